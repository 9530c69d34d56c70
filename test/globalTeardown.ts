import { rmSync } from 'node:fs';

/** Stops the shared dev server, then removes the run's directory (AE_KEEP_TEST_DIR=1 keeps it to look into). */
export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __aeDevServer?: { stop(): Promise<void> } }).__aeDevServer?.stop();
  const dir = process.env.AE_TEST_DIR;
  if (!dir) return;
  if (process.env.AE_KEEP_TEST_DIR) console.log(`\nTest state kept in ${dir} (AE_KEEP_TEST_DIR)`);
  else rmSync(dir, { recursive: true, force: true });
}

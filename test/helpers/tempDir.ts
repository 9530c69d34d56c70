import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A fresh directory for a suite's state, inside the test run's directory (AE_TEST_DIR, which the
 * global teardown removes) so that `npm test` leaves nothing behind in /tmp; os.tmpdir() when a
 * suite runs without the global setup.
 */
export function testTempDir(prefix: string): string {
  return mkdtempSync(path.join(process.env.AE_TEST_DIR ?? os.tmpdir(), prefix));
}

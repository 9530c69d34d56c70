import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseProbeOutput, probeCommand } from '../../activities/probe';
import { testTempDir } from '../helpers/tempDir';

const BOOT = '8c6b9a1e-3f2d-4b5a-9c8d-7e6f5a4b3c2d';

describe('parseProbeOutput', () => {
  it.each([
    { out: `${BOOT}\n4.4.137-pop-hype\n1234.56 2000.00\nyes\n`, expected: { bootId: BOOT, kernelRelease: '4.4.137-pop-hype', uptimeSeconds: 1234.56, fragvisorTree: true } },
    { out: `${BOOT}\n4.15.0-213-generic\n0.50 0.10\nno`, expected: { bootId: BOOT, kernelRelease: '4.15.0-213-generic', uptimeSeconds: 0.5, fragvisorTree: false } },
  ])('parses $expected.kernelRelease', ({ out, expected }) => {
    expect(parseProbeOutput(out)).toEqual(expected);
  });

  it.each([
    { name: 'missing line', out: `${BOOT}\n4.4\nyes\n`, error: /expected 4 lines/ },
    { name: 'boot_id not a UUID', out: 'not-a-uuid\n4.4\n1 1\nyes\n', error: /boot_id line is not a UUID/ },
    { name: 'kernel with spaces', out: `${BOOT}\nLinux 4.4\n1 1\nyes\n`, error: /kernel release/ },
    { name: 'uptime garbage', out: `${BOOT}\n4.4\nabc\nyes\n`, error: /uptime line is not a number/ },
    { name: 'tree answer garbage', out: `${BOOT}\n4.4\n1 1\nmaybe\n`, error: /expected yes or no/ },
  ])('rejects $name', ({ out, error }) => {
    expect(() => parseProbeOutput(out)).toThrow(error);
  });
});

describe('probeCommand', () => {
  it('runs in real bash and tells a present tree from a missing one, whatever the path holds', () => {
    const dir = testTempDir('probe-');
    const run = (p: string) => execFileSync('bash', ['-c', probeCommand(p)], { encoding: 'utf8' });
    const present = parseProbeOutput(run(dir));
    expect(present.fragvisorTree).toBe(true);
    expect(present.kernelRelease).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    expect(parseProbeOutput(run(path.join(dir, "no such; echo 'x' $(id)"))).fragvisorTree).toBe(false);
  });
});

import { execFile } from 'node:child_process';
import { ApplicationFailure } from '@temporalio/common';
import { bmcArgs, bmcPassword } from '../../activities/ipmitool';
import { describeZodError } from '../../config/errors';
import type { LoadedProfile } from '../../config/load';
import { BOOT_STATE_COMMAND, SOFT_REBOOT_COMMAND, consoleTail, judgeBoot, parseBootState } from '../../workflows/commands/reboot';
import { asRoot, sudoPasswordRequired, sudoPasswordRequiredMessage } from '../../workflows/commands/sudo';
import { rebootNodesInput } from '../../workflows/rebootNodes';

const BOOT = '8c6b9a1e-3f2d-4b5a-9c8d-7e6f5a4b3c2d';
const OTHER = '0f1e2d3c-4b5a-4968-8776-655443322110';

describe('parseBootState', () => {
  it.each([
    { out: `${BOOT}\n4.4.137-pop-hype\n`, expected: { bootId: BOOT, kernelRelease: '4.4.137-pop-hype' } },
    { out: `  ${BOOT}\r\n4.15.0-213-generic`, expected: { bootId: BOOT, kernelRelease: '4.15.0-213-generic' } },
  ])('parses $expected.kernelRelease', ({ out, expected }) => {
    expect(parseBootState(out)).toEqual(expected);
  });

  it.each([
    { name: 'no output', out: '', error: /expected 2 lines/ },
    { name: 'only the boot id', out: `${BOOT}\n`, error: /expected 2 lines .*got 1:/ },
    { name: 'an extra line (a login banner)', out: `Welcome\n${BOOT}\n4.4\n`, error: /expected 2 lines .*got 3:/ },
    { name: 'boot_id not a UUID', out: 'cat: /proc/sys/kernel/random/boot_id: No such file\n4.4\n', error: /boot_id line is not a UUID/ },
    { name: 'upper-case UUID', out: `${BOOT.toUpperCase()}\n4.4\n`, error: /not a UUID/ },
    { name: 'kernel with spaces', out: `${BOOT}\nLinux 4.4\n`, error: /kernel release line is not one word/ },
  ])('rejects $name', ({ out, error }) => {
    expect(() => parseBootState(out)).toThrow(error);
  });

  it('parses what BOOT_STATE_COMMAND prints in real bash on this machine', async () => {
    const out = await new Promise<string>((resolve, reject) => execFile('bash', ['-c', BOOT_STATE_COMMAND], (err, stdout) => (err ? reject(err) : resolve(stdout))));
    const state = parseBootState(out);
    expect(state.kernelRelease).toBe((await new Promise<string>((r) => execFile('uname', ['-r'], (_e, o) => r(o)))).trim());
  });
});

describe('command builders', () => {
  it('reboots softly through sudo -n (never a password prompt), as one quoted command line', () => {
    expect(asRoot(['systemctl', 'reboot'])).toEqual(['sudo', '-n', 'systemctl', 'reboot']);
    expect(SOFT_REBOOT_COMMAND).toBe('sudo -n systemctl reboot');
    expect(BOOT_STATE_COMMAND).toBe('cat /proc/sys/kernel/random/boot_id; uname -r');
  });

  it('power-cycles and attaches SOL through the shared ipmitool builder, the password by environment only', () => {
    const bmc = { host: 'echo5-ipmi', port: 623, user: 'ADMIN', passwordEnv: 'ECHO5_BMC_PASSWORD' };
    expect(bmcArgs(bmc, 'cycle')).toEqual(['-I', 'lanplus', '-C', '3', '-H', 'echo5-ipmi', '-p', '623', '-U', 'ADMIN', '-E', 'chassis', 'power', 'cycle']);
    expect(bmcArgs(bmc, 'sol').slice(-3)).toEqual(['-E', 'sol', 'activate']);
    expect(bmcArgs(bmc, 'cycle').join(' ')).not.toMatch(/ECHO5_BMC_PASSWORD|-P/);
  });
});

describe('sudoPasswordRequired', () => {
  it.each([
    { stderr: 'sudo: a password is required\n', expected: true },
    { stderr: 'sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\n', expected: true },
    { stderr: 'sudo: no tty present and no askpass program specified\n', expected: true },
    { stderr: 'Failed to set wall message, ignoring: Interactive authentication required.\n', expected: false },
    { stderr: 'sudo: systemctl: command not found\n', expected: false },
    { stderr: 'make: *** [install] Error 1: a password is required\n', expected: false },
    { stderr: '', expected: false },
  ])('$expected for $stderr', ({ stderr, expected }) => {
    expect(sudoPasswordRequired(stderr)).toBe(expected);
  });

  it('names the node, the command and the fix', () => {
    const msg = sudoPasswordRequiredMessage('echo4', 'ae', SOFT_REBOOT_COMMAND);
    expect(msg).toMatch(/^node echo4: /);
    expect(msg).toContain('`sudo -n systemctl reboot`');
    expect(msg).toContain("ae ALL=(ALL) NOPASSWD: ALL");
    expect(sudoPasswordRequiredMessage('echo4', undefined, 'x')).toContain('<ssh user> ALL=');
  });
});

describe('judgeBoot', () => {
  it.each([
    { name: 'same boot', state: { bootId: BOOT, kernelRelease: '4.4.137-pop-hype' }, expected: undefined, kind: 'same-boot' },
    { name: 'same boot, even on another kernel', state: { bootId: BOOT, kernelRelease: 'x' }, expected: '4.4.137-pop-hype', kind: 'same-boot' },
    { name: 'new boot, any kernel', state: { bootId: OTHER, kernelRelease: '4.15.0-generic' }, expected: undefined, kind: 'rebooted' },
    { name: 'new boot, expected kernel', state: { bootId: OTHER, kernelRelease: '4.4.137-pop-hype' }, expected: '4.4.137-pop-hype', kind: 'rebooted' },
    { name: 'new boot, wrong kernel', state: { bootId: OTHER, kernelRelease: '4.15.0-generic' }, expected: '4.4.137-pop-hype', kind: 'wrong-kernel' },
  ])('$name -> $kind', ({ state, expected, kind }) => {
    expect(judgeBoot('echo4', BOOT, state, expected).kind).toBe(kind);
  });

  it('says expected vs found for a wrong kernel', () => {
    const v = judgeBoot('echo4', BOOT, { bootId: OTHER, kernelRelease: '4.15.0-generic' }, '4.4.137-pop-hype');
    expect(v).toMatchObject({ kind: 'wrong-kernel', message: expect.stringMatching(/^node echo4 .*runs kernel 4\.15\.0-generic, expected 4\.4\.137-pop-hype/) });
  });
});

describe('consoleTail', () => {
  it.each([
    { name: 'CRLF serial lines', text: 'a\r\nb\r\nc\r\n', max: 2, tail: ['b', 'c'] },
    { name: "ipmitool's banners", text: '[SOL Session operational.  Use ~? for help]\r\n[  0.000] boot\r\n\r\n[terminated ipmitool]\n', max: 20, tail: ['[  0.000] boot'] },
    { name: 'the echoed escape that ends the session', text: 'login: \r\n~. [terminated ipmitool]\n', max: 5, tail: ['login:'] },
    { name: 'nothing', text: '', max: 5, tail: [] },
    { name: 'bare CR', text: 'x\ry', max: 5, tail: ['x', 'y'] },
  ])('$name', ({ text, max, tail }) => {
    expect(consoleTail(text, max)).toEqual(tail);
  });
});

describe('bmcPassword', () => {
  const bmc = { host: '127.0.0.1', port: 6230, user: 'ADMIN', passwordEnv: 'AE_TEST_BMC_PW' };
  const loaded = (simulated: boolean) => ({ file: '/state/cluster.yaml', hash: 'h', profile: { simulated } }) as unknown as LoadedProfile;

  it('reads the variable the profile names', () => {
    expect(bmcPassword(loaded(false), 'echo5', bmc, { AE_TEST_BMC_PW: 'pw' })).toBe('pw');
  });

  it.each([{ env: {} }, { env: { AE_TEST_BMC_PW: '' } }])('a missing or empty variable is non-retryable and says how to set it ($env)', ({ env }) => {
    let err: unknown;
    try {
      bmcPassword(loaded(true), 'node2', bmc, env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    const f = err as ApplicationFailure;
    expect(f).toMatchObject({ type: 'BmcPasswordMissing', nonRetryable: true });
    expect(f.message).toMatch(/^node node2: .*AE_TEST_BMC_PW.*\/state\/cluster\.yaml/);
    expect(f.message).toContain('export AE_TEST_BMC_PW="$(cat /state/bmc_password)"');
  });
});

describe('rebootNodesInput', () => {
  const ok = { cluster: 'sim', profileHash: 'a'.repeat(64), runId: 'run-1', nodes: ['node0', 'node1'], reason: 'boot the FragVisor kernel', timeouts: { reboot: 900, operator: 86400 } };

  it('takes what the parent passes, with no BMCs by default', () => {
    expect(rebootNodesInput.parse(ok)).toEqual({ ...ok, bmcNodes: [] });
  });

  it.each([
    { name: 'no nodes', input: { ...ok, nodes: [] }, field: /nodes: expected at least one node/ },
    { name: 'a node twice', input: { ...ok, nodes: ['node0', 'node0'] }, field: /nodes: expected each node at most once/ },
    { name: 'a node name with shell characters', input: { ...ok, nodes: ['node0;reboot'] }, field: /nodes\[0\]/ },
    { name: 'a kernel for a node not rebooted', input: { ...ok, expectedRelease: { node3: '4.4.137-pop-hype' } }, field: /expectedRelease: expected kernel releases only for nodes being rebooted/ },
    { name: 'a zero timeout', input: { ...ok, timeouts: { reboot: 0, operator: 1 } }, field: /timeouts\.reboot: expected the reboot timeout greater than 0 seconds/ },
    { name: 'a short profile hash', input: { ...ok, profileHash: 'abc' }, field: /profileHash/ },
    { name: 'an unknown field', input: { ...ok, force: true }, field: /force/ },
  ])('refuses $name, naming the field', ({ input, field }) => {
    const r = rebootNodesInput.safeParse(input);
    expect(r.success).toBe(false);
    expect(describeZodError(r.error!).join('; ')).toMatch(field);
  });
});

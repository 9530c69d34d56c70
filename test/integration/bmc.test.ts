/**
 * The simulated BMCs driven by the REAL ipmitool (-I lanplus) against the REAL ipmi_sim (Debian
 * packages ipmitool and openipmi, installed by .ci/run). No Temporal server needed.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ipmitoolArgs, IPMI_PASSWORD_ENV, startBmc, type IpmiAction, type SimBmc } from '../../sim/bmc/bmc';
import { freeUdpPort } from '../../sim/bmc/rmcp';

jest.setTimeout(30_000);

/** Generous: ipmi_sim's cycle is `off`, 1 s, two node starts, `on` (slow on a loaded CI machine). */
const CYCLE_WINDOW_MS = 2500;
const PASSWORDS = { node0: 'n0-Secret!', node1: 'n1-Secret%' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class FakeNode {
  power: 'on' | 'off' = 'on';
  calls: string[] = [];
  readonly hooks = {
    status: () => this.power,
    powerOff: async () => {
      this.calls.push('powerOff');
      this.power = 'off';
    },
    powerOn: async () => {
      this.calls.push('powerOn');
      this.power = 'on';
    },
    powerCycle: async () => {
      this.calls.push('powerCycle');
      this.power = 'on';
    },
  };
}

interface Run {
  code: number | null;
  out: string;
}

/** Runs the real ipmitool, password through IPMI_PASSWORD (-E), never through argv. */
function ipmitool(bmc: SimBmc, action: Exclude<IpmiAction, 'sol'>, password: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('ipmitool', ipmitoolArgs({ host: bmc.host, port: bmc.port, user: 'admin' }, action), {
      env: { ...process.env, [IPMI_PASSWORD_ENV]: password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

async function waitUntil(what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('simulated BMC (ipmi_sim + ipmitool -I lanplus)', () => {
  let dir: string;
  const nodes = { node0: new FakeNode(), node1: new FakeNode() };
  const bmcs: Partial<Record<'node0' | 'node1', SimBmc>> = {};
  let consoleLog: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    for (const tool of ['ipmi_sim', 'ipmitool']) {
      if (!['/usr/bin', '/usr/sbin', '/usr/local/bin'].some((d) => existsSync(path.join(d, tool)))) {
        throw new Error(`${tool} is not installed: apt-get install -y openipmi ipmitool (see docs/SIM-BMC.md)`);
      }
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'bmc-test-'));
    consoleLog = path.join(dir, 'node0-console.log');
    writeFileSync(consoleLog, 'boot messages from before the BMC started\n');
    const passwordFile = path.join(dir, 'node1.pass');
    writeFileSync(passwordFile, `${PASSWORDS.node1}\n`, { mode: 0o600 });
    process.env.BMC_TEST_NODE0_PASSWORD = PASSWORDS.node0;
    const log = (line: string) => logLines.push(line);
    const node1Port = await freeUdpPort(); // node0 gets a free port from startBmc, node1 a given one
    const [b0, b1] = await Promise.all([
      startBmc({ node: 'node0', stateDir: path.join(dir, 'node0'), user: 'admin', passwordEnv: 'BMC_TEST_NODE0_PASSWORD', hooks: nodes.node0.hooks, consoleLogFile: consoleLog, cycleWindowMs: CYCLE_WINDOW_MS, log }),
      startBmc({ node: 'node1', stateDir: path.join(dir, 'node1'), port: node1Port, user: 'admin', passwordFile, hooks: nodes.node1.hooks, cycleWindowMs: CYCLE_WINDOW_MS, log }),
    ]);
    bmcs.node0 = b0;
    bmcs.node1 = b1;
  });

  afterAll(async () => {
    const pids = Object.values(bmcs).map((b) => b.pid);
    await Promise.all(Object.values(bmcs).map((b) => b.stop()));
    delete process.env.BMC_TEST_NODE0_PASSWORD;
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  test('each BMC has its own port, and the password is neither on a command line nor left on disk', () => {
    const { node0, node1 } = bmcs as Required<typeof bmcs>;
    expect(node0.port).not.toBe(node1.port);
    for (const [name, b] of Object.entries(bmcs)) {
      const cmdline = readFileSync(`/proc/${b.pid}/cmdline`, 'utf8');
      expect(cmdline).toContain('ipmi_sim');
      expect(cmdline).not.toContain(PASSWORDS[name as 'node0' | 'node1']);
      expect(existsSync(path.join(dir, name, 'bmc', 'lan.conf'))).toBe(false);
      // ipmi_sim gets no secret through its environment, and opens no real IPMI device.
      expect(readFileSync(`/proc/${b.pid}/environ`, 'utf8').split('\0').filter(Boolean).sort()).toEqual(['LANG=C', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`]);
      const fds = readdirSync(`/proc/${b.pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${b.pid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      expect(fds.filter((f) => f.startsWith('/dev/ipmi'))).toEqual([]);
    }
    expect(logLines.join('\n')).not.toMatch(/n[01]-Secret/);
  });

  test('chassis power status', async () => {
    for (const name of ['node0', 'node1'] as const) {
      const r = await ipmitool(bmcs[name]!, 'status', PASSWORDS[name]);
      expect(r).toEqual({ code: 0, out: 'Chassis Power is on\n' });
    }
  });

  test('chassis power cycle calls powerCycle exactly once, on that node only', async () => {
    const r = await ipmitool(bmcs.node0!, 'cycle', PASSWORDS.node0);
    expect(r).toEqual({ code: 0, out: 'Chassis Power Control: Cycle\n' });
    await waitUntil('powerCycle', () => nodes.node0.calls.length > 0);
    await sleep(CYCLE_WINDOW_MS + 300); // a second call, if any, would have come by now
    expect(nodes.node0.calls).toEqual(['powerCycle']);
    expect(nodes.node1.calls).toEqual([]);
    expect((await ipmitool(bmcs.node0!, 'status', PASSWORDS.node0)).out).toBe('Chassis Power is on\n');
  });

  test('chassis power off, then on; the other node stays on', async () => {
    nodes.node0.calls = [];
    const off = await ipmitool(bmcs.node1!, 'off', PASSWORDS.node1);
    expect(off).toEqual({ code: 0, out: 'Chassis Power Control: Down/Off\n' });
    // Reported off at once, even while the BMC still waits to see whether an `on` makes it a cycle.
    expect((await ipmitool(bmcs.node1!, 'status', PASSWORDS.node1)).out).toBe('Chassis Power is off\n');
    await waitUntil('powerOff', () => nodes.node1.calls.length > 0);
    expect(nodes.node1.calls).toEqual(['powerOff']);
    expect(nodes.node1.power).toBe('off');
    expect((await ipmitool(bmcs.node0!, 'status', PASSWORDS.node0)).out).toBe('Chassis Power is on\n');

    const on = await ipmitool(bmcs.node1!, 'on', PASSWORDS.node1);
    expect(on).toEqual({ code: 0, out: 'Chassis Power Control: Up/On\n' });
    await waitUntil('powerOn', () => nodes.node1.calls.length > 1);
    expect(nodes.node1.calls).toEqual(['powerOff', 'powerOn']);
    expect((await ipmitool(bmcs.node1!, 'status', PASSWORDS.node1)).out).toBe('Chassis Power is on\n');
    expect(nodes.node0.calls).toEqual([]);
  });

  test('a wrong password is refused and reaches no hook; the other BMC\'s password is wrong here too', async () => {
    nodes.node0.calls = [];
    nodes.node1.calls = [];
    const wrong = await ipmitool(bmcs.node0!, 'cycle', 'not-the-password');
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/Unable to establish IPMI v2 \/ RMCP\+ session/);
    const crossed = await ipmitool(bmcs.node1!, 'off', PASSWORDS.node0);
    expect(crossed.code).not.toBe(0);
    await sleep(CYCLE_WINDOW_MS + 300);
    expect(nodes.node0.calls).toEqual([]);
    expect(nodes.node1.calls).toEqual([]);
    expect(nodes.node1.power).toBe('on');
  });

  test('sol activate shows what the node prints on its console, and ~. leaves', async () => {
    const child = spawn('ipmitool', ipmitoolArgs({ host: bmcs.node0!.host, port: bmcs.node0!.port, user: 'admin' }, 'sol'), {
      env: { ...process.env, [IPMI_PASSWORD_ENV]: PASSWORDS.node0 },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    let printer: NodeJS.Timeout | undefined;
    try {
      // ipmitool's banner sits in its stdout buffer (a pipe, not a tty) until console data flushes
      // it: keep printing on the node's console until a line shows up in the session.
      let n = 0;
      printer = setInterval(() => appendFileSync(consoleLog, `popcorn: Ready on InfiniBand RDMA (${++n})\n`), 200);
      await waitUntil('a console line in the SOL session', () => /popcorn: Ready on InfiniBand RDMA \(\d+\)\r\n/.test(out));
      clearInterval(printer);
      expect(out).toContain('[SOL Session operational.');
      expect(out).not.toContain('boot messages from before'); // a serial line has no scrollback
      child.stdin.write('\r~.');
      expect(await closed).toBe(0);
    } finally {
      clearInterval(printer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

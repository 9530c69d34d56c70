import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeSim } from '../../cli/commands/sim';
import { loadProfile } from '../../config/load';
import { ipmitoolArgs, IPMI_PASSWORD_ENV, type IpmiAction } from '../../sim/bmc/bmc';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { openssh, probePort, waitUntil } from '../helpers/sim';

/**
 * Every simulated node has a BMC (the real ipmi_sim; docs/SIM-BMC.md) driven by the real
 * `ipmitool -I lanplus`: the profile's bmc blocks, the password file, power status, a reboot-hang
 * cured by `chassis power cycle`, and the node's console (SIMULATED boot messages) over SOL.
 * ipmitool always runs asynchronously: the BMCs answer from this process's event loop.
 */

jest.setTimeout(30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let dir: string;
let sim: SimCluster;
let password: string;

function ipmitool(node: string, action: IpmiAction): ChildProcess {
  const bmc = sim.bmcs[node];
  return spawn('ipmitool', ipmitoolArgs({ host: bmc.host, port: bmc.port, user: bmc.user }, action), {
    env: { ...process.env, [IPMI_PASSWORD_ENV]: password },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function run(node: string, action: Exclude<IpmiAction, 'sol'>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = ipmitool(node, action);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('close', (code) => resolve({ code, out }));
  });
}

beforeAll(async () => {
  for (const tool of ['ipmi_sim', 'ipmitool']) {
    if (!['/usr/bin', '/usr/sbin', '/usr/local/bin'].some((d) => existsSync(path.join(d, tool)))) throw new Error(`${tool} is not installed: apt-get install -y openipmi ipmitool (docs/SIM-BMC.md)`);
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-bmc-'));
  sim = await startSimCluster({ nodes: 2, stateDir: dir, rebootDownMs: 300, faults: [{ node: 'node1', step: 'reboot-hang' }] });
  password = readFileSync(sim.bmcPasswordFile!, 'utf8').trim();
});

afterAll(async () => {
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('gives every node a BMC in the profile, its password in a 0600 file, and says how to export it', async () => {
  expect(sim.bmcPasswordFile).toBe(path.join(dir, 'bmc_password'));
  expect(statSync(sim.bmcPasswordFile!).mode & 0o777).toBe(0o600);
  expect(password).toMatch(/^[A-Za-z0-9]{16}$/);
  const { profile } = loadProfile(sim.profileFile);
  expect(profile.nodes.map((n) => n.bmc)).toEqual(sim.nodes.map((n) => ({ host: '127.0.0.1', port: sim.bmcs[n.name].port, user: 'ADMIN', passwordEnv: 'AE_SIM_BMC_PASSWORD' })));
  const exportLine = `export AE_SIM_BMC_PASSWORD="$(cat ${sim.bmcPasswordFile})"`;
  expect(readFileSync(sim.profileFile, 'utf8')).toContain(exportLine);
  expect(describeSim(sim)).toContain(exportLine);
  expect(readFileSync(sim.profileFile, 'utf8')).not.toContain(password);
  for (const n of ['node0', 'node1']) expect(await run(n, 'status')).toEqual({ code: 0, out: 'Chassis Power is on\n' });
});

it('a reboot-hang is cured by a real `ipmitool -I lanplus ... chassis power cycle`, and the console shows it over SOL', async () => {
  const node = sim.node('node1');
  const before = node.state.bootId;
  expect((await openssh(sim, 'node1', 'sudo reboot')).code).toBe(255);
  await waitUntil('node1 to go down', () => !node.up);
  await sleep(1000); // more than three reboots' worth: it does not come back by itself
  expect(node.state.power).toBe('hung');
  expect(await probePort(node.port)).toBe('refused');
  expect(await run('node1', 'status')).toEqual({ code: 0, out: 'Chassis Power is on\n' }); // hung, not off

  // The serial console over SOL: attach, then cycle; the new boot's messages come through.
  const sol = ipmitool('node1', 'sol');
  let console = '';
  sol.stdout!.on('data', (d: Buffer) => (console += d.toString()));
  const solClosed = new Promise((r) => sol.once('close', r));
  await sleep(1000); // the session is up (its banner stays buffered until console bytes arrive)

  expect(await run('node1', 'cycle')).toEqual({ code: 0, out: 'Chassis Power Control: Cycle\n' });
  await waitUntil('node1 to come back', () => node.up && node.state.bootId !== before, 15_000);
  expect(node.stats.powerCycles).toBe(1);
  expect(sim.world.node('node1').counters['bmc:power-cycle']).toBe(1);
  expect((await openssh(sim, 'node1', 'cat /proc/sys/kernel/random/boot_id')).stdout.trim()).toBe(node.state.bootId);

  await waitUntil('the boot messages on SOL', () => console.includes('login:'), 10_000);
  expect(console).toMatch(/\[ {4}0\.000000\] SIMULATED node node1: this kernel log is generated/);
  expect(console).toContain('\r\n'); // a serial line
  sol.stdin!.end('~.'); // ends the session, as on a terminal
  const stuck = setTimeout(() => sol.kill('SIGKILL'), 3000);
  await solClosed;
  clearTimeout(stuck);

  // The console log keeps the whole story: the hang, then the new boot.
  const log = readFileSync(path.join(dir, 'nodes/node1/console.log'), 'utf8');
  expect(log.indexOf('(SIMULATED reboot-hang)')).toBeGreaterThan(-1);
  expect(log.lastIndexOf('SIMULATED node node1')).toBeGreaterThan(log.indexOf('(SIMULATED reboot-hang)'));
});

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { injectFault } from '../../sim/faults';
import { kernelImage } from '../../sim/fragvisor';
import { openssh, probePort, waitUntil } from '../helpers/sim';

/**
 * Declared faults, over real SSH: reboot-hang (down for good until a power cycle; the BMC path is in
 * simBmc.test.ts), kernel-build, slow, ssh-drop, the ones other imitations consume through
 * World.fault(), and injection at run time (API, inbox file, `ae sim fault`).
 */

jest.setTimeout(30_000);

const TIME_SCALE = 0.0005; // a -j16 kernel build: about 0.36 s
const TREE = '/home/ae/FragVisor/fragvisor-linux';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let sim: SimCluster;

/** `ae sim <args>` in a separate process, as an operator or the chaos driver runs it. */
function aeSim(args: string[]): Promise<{ code: number | null; out: string }> {
  const runner = path.join(dir, 'run-cli.js');
  if (!existsSync(runner)) {
    writeFileSync(runner, `require('tsx/cjs');\nrequire(${JSON.stringify(path.resolve(__dirname, '../../cli/commands/sim.ts'))}).run(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e) => { console.error(e.message); process.exitCode = 2; });\n`);
  }
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [runner, ...args], { cwd: path.resolve(__dirname, '../..'), env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../node_modules') } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('close', (code) => resolve({ code, out }));
  });
}

async function timedBuild(node: string): Promise<{ code: number | null; ms: number; stderr: string }> {
  const started = Date.now();
  const r = await openssh(sim, node, `cd ${TREE} && make -j16 >/dev/null`, 20_000);
  return { code: r.code, ms: Date.now() - started, stderr: r.stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-faults-'));
  sim = await startSimCluster({ nodes: 3, stateDir: dir, timeScale: TIME_SCALE, rebootDownMs: 600_000, bmc: false, faults: [{ node: 'node2', step: 'reboot-hang', times: 1 }] });
});

afterAll(async () => {
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('declared faults', () => {
  it('reboot-hang: the node goes down and stays down (hung, SSH refused) until a power cycle; then it is healed', async () => {
    const node = sim.node('node2');
    const before = node.state.bootId;
    expect(sim.faults.list()).toEqual([{ node: 'node2', step: 'reboot-hang', times: 1, remaining: 1 }]);
    expect((await openssh(sim, 'node2', 'sudo reboot')).code).toBe(255);
    await waitUntil('node2 to go down', () => !node.up);
    await sleep(1500); // far longer than a reboot takes here (600 s * 0.0005 = 0.3 s)
    expect(node.state).toMatchObject({ up: false, power: 'hung', bootId: before });
    expect(await probePort(node.port)).toBe('refused');
    expect(sim.faults.list()).toEqual([]);
    expect(readFileSync(path.join(dir, 'nodes/node2/console.log'), 'utf8')).toMatch(/blocked for more than 120 seconds\. \(SIMULATED reboot-hang\)/);

    await node.powerCycle(); // what the BMC's `chassis power cycle` calls (simBmc.test.ts)
    expect(node.state).toMatchObject({ up: true, power: 'up' });
    expect(node.state.bootId).not.toBe(before);
    expect(node.stats.powerCycles).toBe(1);
    // Fired once: the next reboot comes back by itself.
    const second = node.state.bootId;
    expect((await openssh(sim, 'node2', 'sudo reboot')).code).toBe(255);
    await waitUntil('node2 to come back', () => node.up && node.state.bootId !== second, 10_000);
  });

  it('kernel-build: compiler errors and exit 2, no image; healed after `times`', async () => {
    sim.faults.add({ node: 'node0', step: 'kernel-build' });
    const r = await openssh(sim, 'node0', `cd ${TREE} && make -j16`);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/SIMULATED kernel build/);
    expect(r.stdout).not.toMatch(/bzImage is ready/);
    expect(r.stderr).toMatch(/^kernel\/popcorn\/process_server\.c: In function 'process_server_do_migration':\n.*error: implicit declaration/);
    expect(r.stderr).toMatch(/make: \*\*\* \[kernel\] Error 2\n$/);
    expect(kernelImage(sim.world.node('node0'), `${TREE}/arch/x86/boot/bzImage`)).toBeUndefined();
    expect(await timedBuild('node0')).toMatchObject({ code: 0 });
  });

  it('ssh-drop: the connection of a command still running after afterMs drops; short commands are spared', async () => {
    sim.faults.add({ node: 'node1', step: 'ssh-drop', afterMs: 400 });
    expect(await openssh(sim, 'node1', 'echo quick')).toMatchObject({ code: 0, stdout: 'quick\n' });
    const started = Date.now();
    // /bin/sleep: a real 5 s (the node's sleep would follow this sim's time scale).
    const dropped = await openssh(sim, 'node1', 'echo started; /bin/sleep 5; echo finished');
    expect(dropped.code).toBe(255);
    expect(dropped.stdout).toBe('started\n');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(sim.faults.list()).toEqual([]);
    expect(await openssh(sim, 'node1', 'sleep 0.6; echo survived')).toMatchObject({ code: 0, stdout: 'survived\n' });
  });
});

describe('faults injected at run time', () => {
  it('`ae sim fault` from another process: slow multiplies durations until cleared; --list shows it', async () => {
    const baseline = await timedBuild('node0');
    const armed = await aeSim(['fault', '--state-dir', dir, '--node', 'node1', '--step', 'slow', '--factor', '5']);
    expect(armed).toMatchObject({ code: 0, out: 'armed slow on node1\n' });
    expect(await aeSim(['fault', '--state-dir', dir, '--list'])).toMatchObject({ code: 0, out: expect.stringMatching(/node1\s+slow\s+until cleared\s+5/) });
    const slow = await timedBuild('node1');
    expect(slow.code).toBe(0);
    expect(slow.ms).toBeGreaterThan(baseline.ms + 800); // 0.36 s -> 1.8 s
    expect(await aeSim(['fault', '--state-dir', dir, '--clear', '--node', 'node1'])).toMatchObject({ code: 0 });
    expect(sim.faults.list()).toEqual([]);
    expect(await aeSim(['fault', '--state-dir', dir, '--node', 'node7', '--step', 'slow'])).toMatchObject({ code: expect.any(Number), out: expect.stringContaining('--node must be one of the simulated nodes (node0, node1, node2)') });
    expect(await aeSim(['fault', '--state-dir', dir, '--node', 'node1', '--step', 'meltdown'])).toMatchObject({ out: expect.stringContaining('--step must be one of reboot-hang, kernel-build') });
  });

  it('the faults other imitations consume (insmod-hang, rdma-connect, guest-boot) fire through World.fault, `times` times', async () => {
    await injectFault(dir, { node: 'node0', step: 'insmod-hang', times: 2 });
    sim.faults.add({ node: 'node1', step: 'rdma-connect' });
    sim.faults.add({ node: 'node0', step: 'guest-boot' });
    const { world } = sim;
    expect(world.fault('node1', 'insmod-hang')).toBeUndefined();
    expect(world.fault('node0', 'insmod-hang')).toEqual({ step: 'insmod-hang', times: 2 });
    expect(world.fault('node0', 'insmod-hang')).toEqual({ step: 'insmod-hang', times: 2 });
    expect(world.fault('node0', 'insmod-hang')).toBeUndefined();
    expect(world.fault('node1', 'rdma-connect')).toEqual({ step: 'rdma-connect' });
    expect(world.fault('node1', 'rdma-connect')).toBeUndefined();
    expect(JSON.parse(readFileSync(path.join(dir, 'faults/active.json'), 'utf8'))).toEqual([{ node: 'node0', step: 'guest-boot', remaining: 1 }]);
    expect(world.fault('node0', 'guest-boot')).toEqual({ step: 'guest-boot' });
  });

  it('a fault for a node the cluster does not have is refused at start', async () => {
    const other = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-badfault-'));
    try {
      await expect(startSimCluster({ nodes: 1, stateDir: other, bmc: false, faults: [{ node: 'node9', step: 'slow' }] })).rejects.toThrow(/fault for unknown node "node9"/);
      expect(existsSync(path.join(other, 'sim.pid'))).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

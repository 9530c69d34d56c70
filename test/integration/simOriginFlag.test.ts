import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { probePort, waitUntil } from '../helpers/sim';
import { Procedure } from '../helpers/simProcedure';

/**
 * ARTIFACT.md's procedure over plain OpenSSH on 2 simulated nodes with the origin flag
 * (`#define CONFIG_POPCORN_ORIGIN_NODE` in include/popcorn/debug.h) wrong: it fails visibly, in
 * dmesg and in lkvm's refusal, instead of booting a VM.
 */

const N = 2;

/** dmesg without its `[    1.840000] ` timestamps. */
async function dmesg(p: Procedure, node: string): Promise<string> {
  return (await p.sh(node, 'dmesg')).stdout.replace(/^\[ *\d+\.\d+\] /gm, '');
}

/**
 * `sudo ./lkvm run ...` on the origin, in the foreground as the artifact runs it: resolves with its
 * exit code and output once it exits, or (a VM that boots instead of refusing) once the guest's
 * console reaches its login prompt, which is a failure of these tests.
 */
async function lkvm(p: Procedure): Promise<{ code: number | null; booted: boolean; output: string }> {
  const vm = p.launch();
  let code: number | null | undefined;
  void vm.exited.then((c) => (code = c));
  await waitUntil('lkvm to exit or its guest to boot', () => code !== undefined || vm.output().includes('guest login:'), 20_000);
  const booted = code === undefined;
  if (booted) vm.child.kill('SIGKILL');
  return { code: code ?? null, booted, output: vm.output() };
}

let previousDeps: MsgLayerDeps;
beforeAll(() => {
  previousDeps = setMsgLayerDeps({ windowFloorMs: 5_000 });
});
afterAll(() => {
  if (previousDeps) setMsgLayerDeps(previousDeps);
});

/** A fresh 2-node sim with the procedure's steps 1-3 done, the origin flag kept on the nodes `originOn` says. */
function withCluster(originOn: (i: number) => boolean): { get: () => Procedure; insmods: () => { code: number | null }[] } {
  let stateDir: string;
  let sim: SimCluster;
  let p: Procedure;
  let insmods: { code: number | null }[] = [];
  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-origin-'));
    sim = await startSimCluster({ nodes: N, stateDir, timeScale: 0, rebootDownMs: 300 });
    p = new Procedure(sim);
    for (const build of await p.buildHostKernels(originOn)) expect(build).toMatchObject({ code: 0 });
    expect(await p.buildGuestKernel()).toMatchObject({ code: 0 });
    await p.rebootAll();
    expect(await p.buildMsgLayer()).toEqual(p.nodes.map(() => 0));
    insmods = await p.insmodAll();
  }, 60_000);
  afterAll(async () => {
    p?.killLaunched();
    await sim?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });
  return { get: () => p, insmods: () => insmods };
}

describe("the artifact's sed run on every node, the origin too", () => {
  const c = withCluster(() => false);

  it('the flag is gone from every tree', async () => {
    const p = c.get();
    for (const node of p.nodes) {
      expect((await p.sh(node, 'grep -c "#define CONFIG_POPCORN_ORIGIN_NODE" /home/ae/FragVisor/fragvisor-linux/include/popcorn/debug.h')).stdout).toBe('0\n');
    }
  });

  it('the messaging layer comes up, and says there is no origin node', async () => {
    const p = c.get();
    expect(c.insmods().map((r) => r.code)).toEqual([0, 0]);
    for (const node of p.nodes) {
      const log = await dmesg(p, node);
      expect(log).toContain('popcorn: Ready on InfiniBand RDMA\npopcorn: No origin node\n');
      expect(log).not.toContain('Duplicate origin');
    }
  });

  it('lkvm refuses visibly, and no guest comes up', async () => {
    const p = c.get();
    const r = await lkvm(p);
    expect({ booted: r.booted, code: r.code }).toEqual({ booted: false, code: 1 });
    expect(r.output).toMatch(/^ {2}Fatal: .*no node runs an origin kernel \(CONFIG_POPCORN_ORIGIN_NODE\)$/m);
    expect(r.output).not.toContain('Linux version');
    expect(await probePort(p.guestPort)).toBe('refused');
  }, 30_000);
});

describe('the origin flag left on two nodes', () => {
  const c = withCluster((i) => i <= 1);

  it('dmesg shows the duplicate origin and no Ready, though insmod returned 0', async () => {
    const p = c.get();
    expect(c.insmods().map((r) => r.code)).toEqual([0, 0]);
    for (const node of p.nodes) {
      const log = await dmesg(p, node);
      expect(log).toContain('popcorn: Duplicate origin: nodes 0, 1\n');
      expect(log).not.toContain('Ready on InfiniBand RDMA');
      expect(log).not.toContain('joined');
    }
  });

  it('lkvm refuses visibly, and no guest comes up', async () => {
    const p = c.get();
    const r = await lkvm(p);
    expect({ booted: r.booted, code: r.code }).toEqual({ booted: false, code: 1 });
    expect(r.output).toContain("  Fatal: the Popcorn messaging layer is not up on exactly the VM's nodes (0:node0 1:node1): node0: more than one node runs an origin kernel; node1: more than one node runs an origin kernel\n");
    expect(await probePort(p.guestPort)).toBe('refused');
  }, 30_000);
});

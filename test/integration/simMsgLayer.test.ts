import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { msgLayerStatus, renderConfigH, setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { openssh, type RunResult } from '../helpers/sim';

/**
 * ARTIFACT.md step 3 on the simulated testbed over real SSH, the way msg_pophype4node.sh does it:
 * config.h on every node, `make clean` + `make -C msg_layer`, then `sudo insmod` on each node in
 * order, in the background, 1 s apart. The FragVisor host kernel is built, installed and booted first
 * (step 1), origin flag on node0 only.
 */

const TREE = '/home/ae/FragVisor/fragvisor-linux';
const MSG = `${TREE}/msg_layer`;
const N = 4;
/** Real-time floor of the 60 s windows (the sim runs at timeScale 0): room for four insmods over SSH. */
const WINDOW_MS = 8_000;

let stateDir: string;
let sim: SimCluster;
let ips: string[];
let previousDeps: MsgLayerDeps;
const nodes = Array.from({ length: N }, (_, i) => `node${i}`);

const sh = (node: string, command: string, timeoutMs = 60_000): Promise<RunResult> => openssh(sim, node, command, timeoutMs);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `sudo insmod` on each node in order, each in the background, `gapMs` apart (the artifact's `sleep 1`). */
async function insmodInOrder(which: string[], gapMs = 1000): Promise<Promise<RunResult>[]> {
  const runs: Promise<RunResult>[] = [];
  for (const [k, node] of which.entries()) {
    if (k > 0) await sleep(gapMs);
    runs.push(sh(node, `sudo rmmod ${MSG}/msg_rdma.ko 2>/dev/null; sudo insmod ${MSG}/msg_rdma.ko`));
  }
  return runs;
}

describe('the messaging layer over SSH', () => {
  beforeAll(async () => {
    previousDeps = setMsgLayerDeps({ windowFloorMs: WINDOW_MS });
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-msglayer-'));
    sim = await startSimCluster({ nodes: N, stateDir, timeScale: 0, rebootDownMs: 500 });
    ips = loadProfile(sim.profileFile).profile.nodes.map((n) => n.rdmaIp as string);

    // Step 1 (prerequisite): the FragVisor host kernel on every node, origin flag on node0 only, then reboot.
    await Promise.all(
      nodes.map(async (node, i) => {
        const unflag = i === 0 ? 'true' : "sed -i 's/#define CONFIG_POPCORN_ORIGIN_NODE//' include/popcorn/debug.h";
        const build = await sh(node, `cd ${TREE} && ${unflag} && make -j16 && make modules && sudo make modules_install && sudo make install`, 120_000);
        expect({ node, code: build.code, stderr: build.stderr }).toMatchObject({ node, code: 0 });
        // The API reboot (sim.test.ts covers `sudo reboot`): the kernel installed above boots.
        const bootId = sim.node(node).state.bootId;
        await sim.node(node).reboot();
        expect(sim.node(node).state.bootId).not.toBe(bootId);
        expect((await sh(node, 'uname -r')).stdout).toMatch(/-pop-hype/);
      }),
    );
    // Step 3: the node list on every node, then make clean && make -C msg_layer.
    const configH = Buffer.from(renderConfigH(ips)).toString('base64');
    for (const node of nodes) {
      expect(await sh(node, `echo ${configH} | base64 -d > ${MSG}/config.h`)).toMatchObject({ code: 0 });
      const make = await sh(node, `make clean -C ${MSG}/ >/dev/null && make -C ${MSG}/`);
      expect(make).toMatchObject({ code: 0 });
      expect(make.stdout).toContain(`LD [M]  ${MSG}/msg_rdma.ko`);
    }
  }, 300_000);

  afterAll(async () => {
    await sim?.stop();
    if (previousDeps) setMsgLayerDeps(previousDeps);
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('insmod on every node in order: all succeed, dmesg shows Ready and the 3 others joined', async () => {
    const results = await Promise.all(await insmodInOrder(nodes));
    expect(results.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual(nodes.map(() => ({ code: 0, stderr: '' })));
    for (const [i, node] of nodes.entries()) {
      const dmesg = (await sh(node, 'dmesg -t | grep popcorn')).stdout;
      const peers = nodes.map((_, j) => j).filter((j) => j !== i);
      expect(dmesg).toBe(
        [
          'popcorn: Loading node configuration...',
          ...ips.map((ip, j) => `popcorn: ${j === i ? '*' : ' '} ${j}: ${ip}`),
          'popcorn: Ready on InfiniBand RDMA',
          ...peers.map((j) => `popcorn:    ${j} joined, x86_64`),
          '',
        ].join('\n'),
      );
      expect((await sh(node, 'lsmod')).stdout).toMatch(/^msg_rdma\s+\d+\s+0$/m);
      expect(sim.world.node(node).counters.insmod).toBe(1);
    }
    // What lkvm asks: the layer spans the 4 nodes, node0 runs the (only) origin kernel.
    expect(msgLayerStatus(sim.world, sim.world.nodes)).toEqual({ ready: true, nodeIds: { node0: 0, node1: 1, node2: 2, node3: 3 }, origin: 0, problems: [] });
  }, 120_000);

  it('a node too late for the window: the others time out, the late insmod fails with -62', async () => {
    for (const node of nodes) expect(await sh(node, 'sudo rmmod msg_rdma')).toMatchObject({ code: 0 });
    const early = await Promise.all(await insmodInOrder(nodes.slice(0, 3)));
    expect(early.map((r) => r.code)).toEqual([1, 1, 1]);
    expect(early[0].stderr).toBe(`insmod: ERROR: could not insert module ${MSG}/msg_rdma.ko: Invalid parameters\n`);
    const late = await sh('node3', `sudo insmod ${MSG}/msg_rdma.ko`);
    expect(late).toMatchObject({ code: 1, stderr: `insmod: ERROR: could not insert module ${MSG}/msg_rdma.ko: Invalid parameters\n` });
    const dmesg = (await sh('node3', 'dmesg -t | grep popcorn | tail -n 1')).stdout;
    expect(dmesg).toBe(`popcorn: Unable to connect, ${ips[0]} - 0, -62\n`);
    expect((await sh('node0', 'lsmod')).stdout).not.toContain('msg_rdma');
    expect(msgLayerStatus(sim.world, sim.world.nodes).ready).toBe(false);
  }, 120_000);
});

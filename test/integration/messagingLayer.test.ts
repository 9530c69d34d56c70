import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { msgLayerActivities } from '../../activities/msglayer';
import { SshPool } from '../../activities/ssh/pool';
import { loadProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import type { MessagingLayerFailure, MessagingLayerInput, MessagingLayerResult } from '../../workflows/messagingLayer';
import { waitUntil } from '../helpers/sim';
import { Procedure } from '../helpers/simProcedure';
import { startTestWorker, testClient, uniqueTaskQueue, workflowFailure } from '../helpers/temporal';

/**
 * The messagingLayer workflow through a real worker, over real SSH to 4 simulated nodes that run the
 * FragVisor kernel (built, installed and booted first, origin flag on node0 only): build, insmod in
 * node order as remote jobs, dmesg check; a hang and an RDMA error fail with their kind.
 */

jest.setTimeout(180_000);

/**
 * Real-time floor of the simulated 60 s accept windows (time scale 0). It cannot be 0 here: the
 * insmods are 1 s apart (the artifact's `sleep 1`) and each goes through Temporal and SSH, so a
 * zero-length window would fail every layer of more than one node.
 */
const WINDOW_MS = 10_000;
const taskQueue = uniqueTaskQueue('msglayer');
const nodes = ['node0', 'node1', 'node2', 'node3'];

let dir: string;
let sim: SimCluster;
let proc: Procedure;
let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
let previousDeps: MsgLayerDeps;
let profileHash: string;

const insmods = (node: string) => sim.world.node(node).counters.insmod ?? 0;

/** The parent's input: the first n nodes in order, their current boot_ids. */
function inputFor(n: number, timeoutSeconds: number): MessagingLayerInput {
  return {
    cluster: sim.profileFile,
    profileHash,
    runId: `msglayer-test-${Date.now()}`,
    nodes: nodes.slice(0, n).map((name, i) => ({ name, rdmaIp: proc.ips[i] })),
    bootIds: Object.fromEntries(nodes.slice(0, n).map((name) => [name, sim.node(name).state.bootId])),
    timeoutSeconds,
  };
}

const start = (input: MessagingLayerInput) => client.workflow.start('messagingLayer', { taskQueue, workflowId: `${input.runId}-wf`, args: [input], workflowExecutionTimeout: '3 minutes' });

/** The MessagingLayerFailed details the workflow failed with. */
async function failure(run: Promise<unknown>): Promise<MessagingLayerFailure> {
  const cause = await workflowFailure(run);
  expect(cause).toMatchObject({ type: 'MessagingLayerFailed', nonRetryable: true });
  return cause.details?.[0] as MessagingLayerFailure;
}

beforeAll(async () => {
  previousDeps = setMsgLayerDeps({ windowFloorMs: WINDOW_MS });
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-msglayer-wf-'));
  sim = await startSimCluster({ nodes: 4, stateDir: dir, timeScale: 0, rebootDownMs: 300, bmc: false });
  proc = new Procedure(sim);
  profileHash = loadProfile(sim.profileFile).hash;
  // ARTIFACT.md step 1 first: the layer only loads into a FragVisor kernel.
  const builds = await proc.buildHostKernels((i) => i === 0);
  expect(builds.map((b) => b.code)).toEqual([0, 0, 0, 0]);
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
}, 300_000);

// Every case starts from a fresh boot of the FragVisor kernel (a hung layer is only cured by a reboot).
beforeEach(async () => {
  await Promise.all(nodes.map((n) => sim.node(n).reboot()));
  for (const n of nodes) expect(sim.node(n).state.kernelRelease).toMatch(/-pop-hype$/);
});

afterEach(() => sim.faults.clear());

afterAll(async () => {
  await stopWorker?.();
  await closeClient?.();
  await sim?.stop();
  if (previousDeps) setMsgLayerDeps(previousDeps);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('messagingLayer on the simulated cluster', () => {
  it('4 nodes: every node ready, each joined by the 3 others, one insmod each', async () => {
    const before = nodes.map(insmods);
    const handle = await start(inputFor(4, 60));
    const result = (await handle.result()) as MessagingLayerResult;
    expect(result).toEqual({
      nodes: [
        { node: 'node0', nodeId: 0, joined: [1, 2, 3] },
        { node: 'node1', nodeId: 1, joined: [0, 2, 3] },
        { node: 'node2', nodeId: 2, joined: [0, 1, 3] },
        { node: 'node3', nodeId: 3, joined: [0, 1, 2] },
      ],
    });
    expect(nodes.map((n, i) => insmods(n) - before[i])).toEqual([1, 1, 1, 1]);
    // Independent of the parser: the kernel log over plain OpenSSH.
    for (const [i, n] of nodes.entries()) {
      const log = (await proc.sh(n, 'dmesg -t | grep popcorn')).stdout;
      expect(log).toContain(`popcorn: * ${i}: ${proc.ips[i]}\n`);
      expect(log).toContain('popcorn: Ready on InfiniBand RDMA\n');
      expect(log.match(/joined, x86_64/g)).toHaveLength(3);
    }
    expect(await handle.query('progress')).toMatchObject({ phase: 'done' });
  });

  it('2 nodes (the first two): ready with 1 joined; the others are left alone', async () => {
    const before = nodes.map(insmods);
    const result = (await (await start(inputFor(2, 60))).result()) as MessagingLayerResult;
    expect(result).toEqual({
      nodes: [
        { node: 'node0', nodeId: 0, joined: [1] },
        { node: 'node1', nodeId: 1, joined: [0] },
      ],
    });
    expect(nodes.map((n, i) => insmods(n) - before[i])).toEqual([1, 1, 0, 0]);
    expect((await proc.sh('node0', 'grep -c Node /home/ae/FragVisor/fragvisor-linux/msg_layer/config.h')).stdout.trim()).toBe('2');
  });

  it('a retried insmodMsgLayer in the same boot reattaches: one insmod on the node', async () => {
    const before = insmods('node0');
    const input = inputFor(4, 60);
    const handle = await start(input);
    // Drop node0's SSH connection under the first command after its insmod started (a poll of the job).
    await waitUntil('node0 to run insmod', () => insmods('node0') > before, 60_000);
    sim.faults.add({ node: 'node0', step: 'ssh-drop', afterMs: 0 });
    expect((await handle.result()) as MessagingLayerResult).toMatchObject({ nodes: [{ node: 'node0', joined: [1, 2, 3] }, {}, {}, {}] });
    expect(sim.faults.list()).toEqual([]); // the drop happened
    const history = (await handle.fetchHistory()).events ?? [];
    const insmodIds = new Set(history.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'insmodMsgLayer').map((e) => String(e.eventId)));
    const attempts = history.filter((e) => insmodIds.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId))).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    expect(attempts).toContain(2);
    expect(insmods('node0') - before).toBe(1);

    // Another retry, by hand: the same (run, node, boot) finds the finished job.
    const pool = new SshPool();
    try {
      const again = await msgLayerActivities({ ssh: pool }).insmodMsgLayer({ cluster: input.cluster, profileHash, runId: input.runId, node: 'node0', bootId: input.bootIds.node0, timeoutSeconds: 60 });
      expect(again).toMatchObject({ node: 'node0', exitCode: 0, reattached: true });
    } finally {
      await pool.close();
    }
    expect(insmods('node0') - before).toBe(1);
  });

  it('insmod-hang on node2: fails with kind hang naming node2, within the timeout; a rerun in that boot finds it busy', async () => {
    sim.faults.add({ node: 'node2', step: 'insmod-hang' });
    const timeoutSeconds = 20;
    const started = Date.now();
    const f = await failure((await start(inputFor(4, timeoutSeconds))).result());
    const elapsed = Date.now() - started;
    expect(f).toMatchObject({ kind: 'hang', nodes: ['node2'] });
    expect(f.lines).toContain('node2: Unhandled client event 7');
    expect(elapsed).toBeGreaterThan(timeoutSeconds * 1000);
    expect(elapsed).toBeLessThan((timeoutSeconds + 20) * 1000);

    // Again without a reboot: the hung module cannot be unloaded (rmmod: busy), so no node gets an insmod.
    const before = nodes.map(insmods);
    const again = await failure((await start(inputFor(4, timeoutSeconds))).result());
    expect(again).toMatchObject({ kind: 'hang', nodes: ['node2'] });
    expect(again.lines).toContain('node2: rmmod: ERROR: could not remove module msg_rdma: Device or resource busy');
    expect(nodes.map((n, i) => insmods(n) - before[i])).toEqual([0, 0, 0, 0]);
  });

  it('rdma-connect on node2: fails with kind rdma-error and the Unable to connect line', async () => {
    sim.faults.add({ node: 'node2', step: 'rdma-connect' });
    const f = await failure((await start(inputFor(4, 60))).result());
    expect(f.kind).toBe('rdma-error');
    expect(f.nodes).toContain('node2');
    expect(f.lines).toContain(`node2: popcorn: Unable to connect, ${proc.ips[0]} - 0, -62`);
  });
});

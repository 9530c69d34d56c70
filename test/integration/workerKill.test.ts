import type { Client } from '@temporalio/client';
import type { ProbeSummary } from '../../activities/probeTypes';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { alive, type Spawned } from '../helpers/processes';
import { startWorkerProcess, testClient, uniqueTaskQueue } from '../helpers/temporal';
import { testTempDir } from '../helpers/tempDir';

let sim: SimCluster;
let client: Client;
let closeClient: () => Promise<void>;
const workers: Spawned[] = [];
const taskQueue = uniqueTaskQueue('kill');

const startWorker = async () => {
  const w = await startWorkerProcess(taskQueue);
  workers.push(w);
  return w;
};

beforeAll(async () => {
  sim = await startSimCluster({ nodes: 4, stateDir: testTempDir('ae-sim-kill-'), rebootDownMs: 8000 });
  ({ client, close: closeClient } = await testClient());
});

afterAll(async () => {
  for (const w of workers) w.child.kill('SIGKILL');
  await closeClient?.();
  await sim?.stop();
});

it('a worker SIGKILLed during probeCluster against a rebooting node: a new worker finishes the workflow', async () => {
  const first = await startWorker();
  const rebooting = sim.node('node2');
  const bootIdBefore = rebooting.state.bootId;
  const reboot = rebooting.reboot();

  const handle = await client.workflow.start('probeCluster', { taskQueue, workflowId: `probe-kill-${Date.now()}`, args: [{ cluster: sim.profileFile }] });
  // Wait until the probe of the rebooting node has failed at least once (the node refuses SSH).
  for (let i = 0; ; i++) {
    const { raw } = await handle.describe();
    const pending = raw.pendingActivities ?? [];
    if (pending.some((a) => (a.attempt ?? 0) >= 2)) break;
    if (i > 100) throw new Error(`the rebooting node's probe never retried: ${JSON.stringify(pending)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  first.child.kill('SIGKILL');
  expect((await first.exited).signal).toBe('SIGKILL');
  expect(alive(first.child.pid!)).toBe(false);

  await startWorker();
  const summary = (await handle.result()) as ProbeSummary;
  await reboot;
  expect(summary.reachable).toBe(4);
  const node2 = summary.nodes.find((n) => n.node === 'node2')!;
  expect(node2.bootId).not.toBe(bootIdBefore);
  expect(node2.bootId).toBe(rebooting.state.bootId);
}, 90_000);

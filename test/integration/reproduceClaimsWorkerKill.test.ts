import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { SIM_BMC_PASSWORD_ENV } from '../../sim/profile';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { benchVariants } from '../../workflows/commands/bench';
import type { KernelProgress } from '../../workflows/installHostKernel';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { alive, type Spawned } from '../helpers/processes';
import { waitUntil } from '../helpers/sim';
import { startWorkerProcess, testClient, uniqueTaskQueue } from '../helpers/temporal';

/**
 * The worker process SIGKILLed while every node builds its kernel (a real `ae worker`, a sim at a
 * time scale where a -j16 build takes seconds): a new worker reattaches to the running builds, no
 * build starts twice, and the run completes.
 */

jest.setTimeout(300_000);

const NODES = ['node0', 'node1', 'node2', 'node3'];
const taskQueue = uniqueTaskQueue('reproduce-kill');
let sim: SimCluster;
let client: Client;
let closeClient: () => Promise<void>;
let previousDeps: MsgLayerDeps | undefined;
let stateDir: string;
const workers: Spawned[] = [];

const startWorker = async () => {
  const w = await startWorkerProcess(taskQueue, { [SIM_BMC_PASSWORD_ENV]: readFileSync(sim.bmcPasswordFile!, 'utf8').trim() });
  workers.push(w);
  return w;
};

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-reproduce-kill-'));
  // 0.01: a -j16 host build lasts about 7 s, a reboot a fraction of a second.
  sim = await startSimCluster({ nodes: 4, stateDir, rebootDownMs: 3000, timeScale: 0.01 });
  previousDeps = setMsgLayerDeps({ windowFloorMs: 8000 });
  ({ client, close: closeClient } = await testClient());
});

afterAll(async () => {
  for (const w of workers) w.child.kill('SIGKILL');
  if (previousDeps) setMsgLayerDeps(previousDeps);
  await closeClient?.();
  await sim?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

it('a worker SIGKILLed during the kernel builds: the new worker reattaches, no build runs twice, the run completes', async () => {
  const first = await startWorker();
  const workflowId = `reproduce-kill-${process.pid}-${Date.now()}`;
  const handle = await client.workflow.start('reproduceClaims', { taskQueue, workflowId, args: [{ cluster: sim.profileFile, experiments: [], hypervisors: ['fragvisor'] }] });
  // Kill the worker once node1's make really runs on the node (the sim counts it when make starts).
  await waitUntil('node1 to be building', () => (sim.world.node('node1').counters['make:all'] ?? 0) === 1, 120_000, 100);
  expect(await client.workflow.getHandle(`${workflowId}/fragvisor/host-kernel/node1`).query<KernelProgress>('progress')).toMatchObject({ step: 'build', state: 'running' });
  first.child.kill('SIGKILL');
  expect((await first.exited).signal).toBe('SIGKILL');
  expect(alive(first.child.pid!)).toBe(false);

  await startWorker();
  const result = (await handle.result()) as ReproduceClaimsResult;
  expect(result.prepared[0].messagingLayer).toEqual({ nodes: 4, attempts: 1 });
  expect(result.prepared[0].kernels.map((k) => k.skipped)).toEqual([false, false, false, false]);
  // node1 was building when the worker died: its build was not started again; nor any other.
  for (const n of NODES.slice(1)) expect(sim.world.node(n).counters['make:all']).toBe(1);
  // The origin: its host kernel and the guest kernel, one build each.
  expect(sim.world.node('node0').counters['make:all']).toBe(2);
  for (const n of NODES) expect(sim.world.node(n).counters['make:install']).toBe(1);
});

it('a worker SIGKILLed in the middle of E3: the run finishes without measuring a finished size again', async () => {
  const first = await startWorker();
  const workflowId = `reproduce-kill-e3-${process.pid}-${Date.now()}`;
  const bench = { network: { requests: 50, concurrency: 5, sizes: [1, 16, 256, 4096, 65536], settleSeconds: 0 }, storage: { mib: 16 }, npb: { kernels: ['ep.B'] } };
  const handle = await client.workflow.start('reproduceClaims', {
    taskQueue,
    workflowId,
    args: [{ cluster: sim.profileFile, experiments: ['E3'], nodeCounts: [2], repetitions: 1, hypervisors: ['fragvisor'], bench }],
  });
  const measurements = path.join(process.env.AE_RUNS_DIR!, workflowId, 'measurements');
  const done = () => (existsSync(measurements) ? readdirSync(measurements) : []);
  await waitUntil('three E3 sizes measured', () => done().length >= 3, 180_000, 100);
  first.child.kill('SIGKILL');
  expect((await first.exited).signal).toBe('SIGKILL');
  const before = new Map(done().map((f) => [f, readFileSync(path.join(measurements, f), 'utf8')]));

  await startWorker();
  const result = (await handle.result()) as ReproduceClaimsResult;
  expect(result.epochs).toEqual([expect.objectContaining({ epoch: 'fragvisor/E3-n2', attempts: 1 })]);
  expect(result.measurements).toBe(benchVariants('E3', 2, bench).length);
  // Every size measured before the kill is still the measurement taken then, byte for byte.
  for (const [f, text] of before) expect(readFileSync(path.join(measurements, f), 'utf8')).toBe(text);
});

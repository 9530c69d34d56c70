import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { SIM_BMC_PASSWORD_ENV } from '../../sim/profile';
import { setMsgLayerDeps } from '../../sim/tools/msglayer';
import type { ReproduceClaimsInput } from '../../workflows/inputs';
import { startTestWorker, testClient, uniqueTaskQueue } from './temporal';
import { testTempDir } from './tempDir';

/**
 * What a reproduceClaims suite runs against: a simulated cluster, by default at time scale 0 (the BMC password
 * in the worker's environment), a copy of its profile with the timeouts the suite wants short, a
 * worker in this process on its own task queue, and a client.
 */
export interface RunStack {
  sim: SimCluster;
  client: Client;
  /** The profile the runs use (the sim's, with the given timeouts). */
  profile: string;
  start(input: Partial<ReproduceClaimsInput>): Promise<WorkflowHandle>;
  stop(): Promise<void>;
}

export async function startRunStack(
  name: string,
  opts: { nodes: number; timeouts: Record<string, number>; /** Default 0. */ timeScale?: number; /** Performance model (config/models), default `default`. */ model?: string },
): Promise<RunStack> {
  const stateDir = testTempDir(`ae-sim-${name}-`);
  const sim = await startSimCluster({ nodes: opts.nodes, stateDir, rebootDownMs: 300, timeScale: opts.timeScale ?? 0, model: opts.model });
  process.env[SIM_BMC_PASSWORD_ENV] = readFileSync(sim.bmcPasswordFile!, 'utf8').trim();
  // The 60 s accept windows last at least this long in real time (timeScale 0): room for the insmods, 1 s apart.
  const previousDeps = setMsgLayerDeps({ windowFloorMs: 8000 });
  const doc = parseYaml(readFileSync(sim.profileFile, 'utf8')) as { timeouts: Record<string, number> };
  Object.assign(doc.timeouts, opts.timeouts);
  const profile = path.join(path.dirname(sim.profileFile), 'cluster-short.yaml');
  writeFileSync(profile, toYaml(doc));
  const taskQueue = uniqueTaskQueue(name);
  const { client, close } = await testClient();
  const worker = await startTestWorker(taskQueue);
  let runs = 0;
  return {
    sim,
    client,
    profile,
    start: (input) => client.workflow.start('reproduceClaims', { taskQueue, workflowId: `${name}-${process.pid}-${Date.now()}-${++runs}`, args: [{ cluster: profile, ...input }] }),
    async stop() {
      setMsgLayerDeps(previousDeps);
      await worker.stop();
      await close();
      await sim.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { startSimCluster, type SimCluster } from '../sim/cluster';
import { freePort } from '../sim/ports';
import { SIM_BMC_PASSWORD_ENV } from '../sim/profile';
import { spawnAe, type Spawned } from '../test/helpers/processes';
import { startDevServer } from '../workers/devServer';
import { findTemporalCli } from '../workers/temporalCli';
import { createAeWorker } from '../workers/worker';
import { bundleWorkflows } from '../workers/workflowBundle';

/** The bench's own in-memory dev server, one workflow bundle for every worker, and a client. */
export interface BenchTemporal {
  address: string;
  client: Client;
  stop(): Promise<void>;
}

export async function startTemporal(dir: string): Promise<BenchTemporal> {
  mkdirSync(dir, { recursive: true });
  const [server, bundle] = await Promise.all([
    freePort().then((port) => startDevServer({ cliPath: findTemporalCli(), port, logFile: path.join(dir, 'temporal.log') })),
    bundleWorkflows(),
  ]);
  const bundleFile = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundleFile, bundle);
  // Read by createAeWorker, here and in `ae worker` children: no bundling per worker.
  process.env.AE_WORKFLOW_BUNDLE = bundleFile;
  process.env.AE_RUNS_DIR = path.join(dir, 'runs');
  const connection = await Connection.connect({ address: server.address });
  return {
    address: server.address,
    client: new Client({ connection }),
    async stop() {
      await connection.close();
      await server.stop();
    },
  };
}

/**
 * A simulated cluster in this process (the figures read its counters and boot times) and a copy of
 * its profile with `timeouts` changed; the BMC password where the worker reads it.
 */
export async function startBenchSim(dir: string, opts: { nodes: number; timeScale: number; rebootDownMs: number; timeouts?: Record<string, number>; buildLogMiB?: number }): Promise<{ sim: SimCluster; profile: string }> {
  const sim = await startSimCluster({ nodes: opts.nodes, stateDir: dir, rebootDownMs: opts.rebootDownMs, timeScale: opts.timeScale, ...(opts.buildLogMiB ? { buildLogMiB: opts.buildLogMiB } : {}) });
  if (sim.bmcPasswordFile) process.env[SIM_BMC_PASSWORD_ENV] = readFileSync(sim.bmcPasswordFile, 'utf8').trim();
  const doc = parseYaml(readFileSync(sim.profileFile, 'utf8')) as { timeouts: Record<string, number> };
  Object.assign(doc.timeouts, opts.timeouts ?? {});
  const profile = path.join(dir, 'cluster-bench.yaml');
  writeFileSync(profile, toYaml(doc));
  return { sim, profile };
}

/** A worker in this process on `taskQueue`. */
export async function inProcessWorker(address: string, taskQueue: string): Promise<() => Promise<void>> {
  const connection = await NativeConnection.connect({ address });
  const w = await createAeWorker({ connection, namespace: 'default', taskQueue });
  const running = w.run();
  return async () => {
    if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
    await running;
    await connection.close();
  };
}

/** `ae worker` as its own process (its memory measured alone), once it polls. */
export async function workerProcess(address: string, taskQueue: string): Promise<Spawned> {
  const w = spawnAe(['worker', '--task-queue', taskQueue], { TEMPORAL_ADDRESS: address, AE_LOG_LEVEL: 'WARN' });
  await w.waitFor(/worker polling task queue/, 120_000);
  return w;
}

export const taskQueueFor = (name: string) => `bench-${name}-${process.pid}-${Date.now()}`;

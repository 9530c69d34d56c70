import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { BenchSettingsInput } from '../workflows/commands/bench';
import type { ReproduceClaimsInput } from '../workflows/inputs';
import type { BenchContext } from './context';
import { historyTree, type HistoryStat } from './history';
import { inProcessWorker, startBenchSim, taskQueueFor } from './stack';

/**
 * The artifact's benchmarks cut down as test/integration/reproduceClaimsEpochs.test.ts cuts them
 * (two PHP levels, two page sizes, one NPB kernel, no pauses): the whole run with little to measure.
 */
export const SMALL_BENCH: BenchSettingsInput = {
  lemp: { requests: 20, concurrency: 5, levels: ['25ms', '250ms'] },
  network: { requests: 50, concurrency: 5, sizes: [1, 4096], settleSeconds: 0 },
  openLambda: { gapSeconds: 0 },
  storage: { mib: 16 },
  npb: { kernels: ['ep.B'] },
};

export interface FullRun {
  wallMs: number;
  tree: HistoryStat[];
}

/** One reproduceClaims on a fresh simulated cluster with a worker in this process; its histories. */
export async function fullRun(ctx: BenchContext, opts: { nodes: number; timeScale: number; rebootDownMs: number; input: Partial<ReproduceClaimsInput> }): Promise<FullRun> {
  const t = await ctx.temporal();
  const dir = mkdtempSync(path.join(ctx.tmp, 'run-'));
  const { sim, profile } = await startBenchSim(path.join(dir, 'sim'), { nodes: opts.nodes, timeScale: opts.timeScale, rebootDownMs: opts.rebootDownMs, timeouts: { messagingLayer: 20, vmBoot: 60 } });
  const taskQueue = taskQueueFor('run');
  const stopWorker = await inProcessWorker(t.address, taskQueue);
  try {
    const workflowId = `${taskQueue}-run`;
    const t0 = performance.now();
    const handle = await t.client.workflow.start('reproduceClaims', { taskQueue, workflowId, args: [{ cluster: profile, ...opts.input }] });
    await handle.result();
    const wallMs = performance.now() - t0;
    return { wallMs, tree: await historyTree(t.client, workflowId) };
  } finally {
    await stopWorker();
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

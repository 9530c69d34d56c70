import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { SIM_CLUSTER, TASK_QUEUE } from '../config/constants';
import { workflowUiUrl } from '../config/temporal';
import { failureMessage, follow, liveView } from '../cli/commands/run';
import { workflowIdFor } from '../cli/format';
import { verdictSummary } from '../cli/verdicts';
import type { BenchSettingsInput } from '../workflows/commands/bench';
import type { ReproduceClaimsInput } from '../workflows/inputs';
import type { ReproduceClaimsResult } from '../workflows/reproduceClaims';

/**
 * The demo's benchmarks: every experiment and every point a claim compares, with E3's sweep thinned
 * so the whole AE fits the local stack's few minutes. E1 and E2 are the artifact's own (four PHP
 * levels, ab -n 100 -c 10; a burst per repetition). E3 keeps four of its twelve page sizes (1 B to
 * 64 KiB) with ab -n 300 instead of 1000, the disk at 256 MiB, and two NPB kernels (the short-running
 * is.B and mg.B; NPB is our reconstruction and no claim reads it). The simulator holds static pages
 * at 3x their model time (STATIC_PAGE_MIN_SCALE), so each ab run follows the model within about 1%
 * and 300 requests are plenty; the larger pages would cost minutes there (GiantVM's delegated 1 MiB
 * page takes ~0.12 s a request). `--demo-input` runs the artifact's full settings (`"bench": {}`).
 */
export const DEMO_BENCH: BenchSettingsInput = {
  network: { sizes: [1, 1024, 16384, 65536], requests: 300 },
  storage: { mib: 256 },
  npb: { kernels: ['is.B', 'mg.B'] },
};

/**
 * What `npm start` demonstrates by default: the whole AE (every experiment, both hypervisors) on the
 * simulated cluster, on the artifact's 4 nodes (fewer when the simulated cluster is smaller), with
 * DEMO_BENCH. Adding repetitions to narrow intervals stops after 2 minutes: a demo, not a day on the
 * cluster.
 */
export function defaultDemoInput(simNodes: number): ReproduceClaimsInput {
  return { cluster: SIM_CLUSTER, nodeCounts: [Math.min(4, simNodes)], bench: DEMO_BENCH, claims: { timeBudgetMinutes: 2 } };
}

export interface DemoOptions {
  address: string;
  uiUrl: string;
  input: ReproduceClaimsInput;
  log: (line: string) => void;
  /** Where the live progress goes (a terminal redraws in place; a pipe gets changed lines). */
  stream: NodeJS.WriteStream;
}

/**
 * Starts reproduceClaims on the simulated cluster, follows it live, and ends with the verdicts and
 * the report's path. A failed run is reported, not thrown: the stack stays up to look into it.
 */
export async function runDemo(opts: DemoOptions): Promise<{ workflowId: string; result?: ReproduceClaimsResult }> {
  const connection = await Connection.connect({ address: opts.address });
  try {
    const client = new Client({ connection });
    const workflowId = workflowIdFor('demo', SIM_CLUSTER, new Date());
    const ui = workflowUiUrl(opts.uiUrl, 'default', workflowId);
    opts.log(`Demo: reproduceClaims on the simulated cluster (workflow ${workflowId})\n  ${ui}`);
    const handle = await client.workflow.start('reproduceClaims', { taskQueue: TASK_QUEUE, workflowId, args: [opts.input] });
    try {
      const result = (await follow(handle, liveView(opts.stream))) as ReproduceClaimsResult;
      opts.log(`\nDemo ${workflowId} completed.\n${verdictSummary(result).join('\n')}`);
      return { workflowId, result };
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      opts.log(`\nDemo ${workflowId} failed: ${failureMessage(err)}\n  ${ui}`);
      return { workflowId };
    }
  } finally {
    await connection.close();
  }
}

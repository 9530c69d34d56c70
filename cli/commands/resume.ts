import { parseArgs } from 'node:util';
import { WorkflowExecutionAlreadyStartedError, type WorkflowExecutionDescription } from '@temporalio/client';
import { describeZodError } from '../../config/errors';
import { resumeUpdate } from '../../workflows/control';
import { reproduceClaimsInput, runId as runIdSchema } from '../../workflows/inputs';
import { requireWorker, uiLink, withTemporal, type Connected } from '../client';
import { EXIT, ExitError } from '../exitError';
import { printJson } from '../format';
import { describeRun, isOpen, queryProgress, runIdArg, sendControl, startInput } from '../runs';

export const usage = `ae resume <runId> [--json]
  A paused run (ae pause): goes on.
  A closed run (completed, failed, aborted, cancelled, terminated, timed out): starts a new run with
  the same input plus resumeFrom: <runId>, id <runId>-r<N> (the next free N; resuming x-r1 starts
  x-r2), on the same task queue. It reuses what the earlier run finished (kernels a node still runs,
  measurements recorded) and does only the rest.
  A run that is open and not paused: refused (exit 2); ae pause, ae abort or ae cancel it first.
  --json       {"mode":"update"|"new-run","workflowId",...} on stdout
  exit codes: 0 resumed / started, 1 failed, 2 usage or the run is running, 3 Temporal or a worker unreachable, 4 no such run`;

/** Tries at most this many -rN ids before giving up (each taken one is an earlier resume). */
const MAX_RESUMES = 50;

/** The ids a resume of `id` may take, in order: `x` -> x-r1, x-r2...; `x-r1` -> x-r2, x-r3... */
export function resumeIds(id: string, count = MAX_RESUMES): string[] {
  const m = /^(.*)-r(\d+)$/.exec(id);
  const [base, first] = m ? [m[1], Number(m[2]) + 1] : [id, 1];
  return Array.from({ length: count }, (_, i) => `${base}-r${first + i}`).filter((x) => runIdSchema.safeParse(x).success);
}

/** Whether the run got as far as its run-store record (the initRun step): one that never did has nothing to resume from. */
async function madeRecord(t: Connected, d: WorkflowExecutionDescription): Promise<boolean> {
  const history = await t.client.workflow.getHandle(d.workflowId, d.runId).fetchHistory();
  return (history.events ?? []).some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'initRun');
}

/**
 * A new run with the closed run's input plus resumeFrom, under the first free -rN id; without
 * resumeFrom when the closed run never started work (e.g. terminated while it waited for the cluster).
 */
async function startResumed(t: Connected, d: WorkflowExecutionDescription): Promise<{ workflowId: string; runId: string; resumeFrom?: string }> {
  if (d.type !== 'reproduceClaims') throw new ExitError(`run ${d.workflowId} is a ${d.type} workflow: resume applies to reproduceClaims runs`, EXIT.failed);
  const resumeFrom = (await madeRecord(t, d)) ? d.workflowId : undefined;
  const parsed = reproduceClaimsInput.safeParse({ ...(await startInput(t, d)) as object, ...(resumeFrom ? { resumeFrom } : {}) });
  if (!parsed.success) throw new ExitError(`run ${d.workflowId}'s input is not a valid reproduceClaims input: ${describeZodError(parsed.error).join('; ')}`, EXIT.failed);
  try {
    await requireWorker(t.client, t.namespace, d.taskQueue);
  } catch (err) {
    throw new ExitError((err as Error).message, EXIT.unreachable);
  }
  for (const workflowId of resumeIds(d.workflowId)) {
    try {
      const h = await t.client.workflow.start('reproduceClaims', { taskQueue: d.taskQueue, workflowId, args: [parsed.data], workflowIdReusePolicy: 'REJECT_DUPLICATE' });
      return { workflowId, runId: h.firstExecutionRunId, ...(resumeFrom ? { resumeFrom } : {}) };
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
  }
  throw new ExitError(`run ${d.workflowId}: no free resume id (${MAX_RESUMES} tried); start one with ae run --input and "resumeFrom"`, EXIT.failed);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  const id = runIdArg(positionals);
  return withTemporal(async (t) => {
    const d = await describeRun(t, id);
    if (isOpen(d)) {
      const progress = await queryProgress(t.client, id);
      if (!progress) throw new ExitError(`run ${id} is open, but no worker answered its progress query, so it cannot be told whether it is paused: start a worker (npx ae worker)`, EXIT.failed);
      if (!progress.paused) {
        throw new ExitError(`run ${id} is running and not paused: nothing to resume (ae pause ${id} pauses it; ae abort or ae cancel stops it)`, EXIT.usage);
      }
      const state = await sendControl(t, id, resumeUpdate, []);
      if (values.json) printJson({ mode: 'update', workflowId: id, ...state });
      else console.log(`${id} resumed`);
      return EXIT.ok;
    }
    const started = await startResumed(t, d);
    const ui = uiLink(t.namespace, started.workflowId);
    if (values.json) printJson({ mode: 'new-run', ...started, resumeFrom: started.resumeFrom ?? null, previousStatus: d.status.name, ui });
    else if (started.resumeFrom) console.log(`started ${started.workflowId}, resuming ${id} (which ended ${d.status.name}): it does only what ${id} did not finish\n  ${ui}`);
    else console.log(`started ${started.workflowId} afresh: ${id} (which ended ${d.status.name}) never started work on the cluster, so there is nothing to resume from\n  ${ui}`);
    return EXIT.ok;
  });
}

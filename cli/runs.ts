import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowClient, type WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter, type UpdateDefinition } from '@temporalio/common';
import type { ControlState } from '../workflows/control';
import { runId as runIdSchema } from '../workflows/inputs';
import { currentEpochChild, epochProgressQuery, runProgressQuery, type EpochProgress, type RunProgress } from '../workflows/progress';
import { requireWorker, type Connected } from './client';
import { EXIT, ExitError } from './exitError';
import { UsageError } from './usageError';

/** Shared by the commands that act on one run (`ae status <id>`, logs, cancel, pause, resume, abort). */

/** The one run id among the positionals, checked like the workflow checks it (it names a run-store folder). */
export function runIdArg(positionals: readonly string[]): string {
  if (positionals.length !== 1) throw new UsageError(`expected one run id (the workflow id of a run, e.g. from \`ae status\`), got ${positionals.length}`);
  const [id] = positionals;
  const parsed = runIdSchema.safeParse(id);
  if (!parsed.success) throw new UsageError(`run id ${JSON.stringify(id)}: ${parsed.error.issues[0].message}`);
  return id;
}

/** The run as Temporal knows it (its latest execution); an unknown id is exit code 4. */
export async function describeRun({ client, namespace, address }: Connected, id: string): Promise<WorkflowExecutionDescription> {
  try {
    return await client.workflow.getHandle(id).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new ExitError(`no run "${id}" in Temporal namespace ${namespace} at ${address}: \`ae status\` lists the recent runs`, EXIT.notFound);
    }
    throw err;
  }
}

/** Open: running, or paused by the server's own workflow pause (not ours: that is the `pause` update). */
export const isOpen = (d: Pick<WorkflowExecutionDescription, 'status'>): boolean => d.status.name === 'RUNNING' || d.status.name === 'PAUSED';

/**
 * The run's `progress` query, or undefined when no worker answers within `ms` (a closed run is
 * answered by replaying it, which also takes a worker).
 */
export async function queryProgress(client: Client, id: string, ms = 5000): Promise<RunProgress | undefined> {
  try {
    return await client.withDeadline(Date.now() + ms, () => client.workflow.getHandle(id).query(runProgressQuery));
  } catch {
    return undefined;
  }
}

/** While a run measures: its current epoch child's progress; undefined when it has none or the child does not answer (it may have closed since). */
export async function queryEpochProgress(client: WorkflowClient, p: RunProgress, ms = 5000): Promise<EpochProgress | undefined> {
  const child = currentEpochChild(p);
  if (!child) return undefined;
  try {
    return await client.withDeadline(Date.now() + ms, () => client.getHandle(child).query(epochProgressQuery));
  } catch {
    return undefined;
  }
}

/** The input the run was started with (the first event of its history; one page of one event, however long the run). */
export async function startInput({ client, namespace }: Connected, d: WorkflowExecutionDescription): Promise<unknown> {
  const res = await client.workflowService.getWorkflowExecutionHistory({ namespace, execution: { workflowId: d.workflowId, runId: d.runId }, maximumPageSize: 1 });
  const payload = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new ExitError(`run ${d.workflowId}: its history holds no start input`, EXIT.failed);
  return defaultPayloadConverter.fromPayload(payload);
}

/** How long to wait for the worker to accept and answer an operator's update. */
const UPDATE_MS = 30_000;

/**
 * Sends a control update (workflows/control.ts) to an open run: exit 1 when the run is closed, the
 * workflow refuses (its validator's message), or no worker answers in time; 3 when nobody polls its queue.
 */
export async function sendControl<A extends unknown[]>(t: Connected, id: string, update: UpdateDefinition<ControlState, A>, args: A): Promise<ControlState> {
  const d = await describeRun(t, id);
  if (!isOpen(d)) throw new ExitError(`run ${id} has ended (${d.status.name}): ${update.name} applies to a running run`, EXIT.failed);
  try {
    await requireWorker(t.client, t.namespace, d.taskQueue);
  } catch (err) {
    throw new ExitError((err as Error).message, EXIT.unreachable);
  }
  try {
    const handle = t.client.workflow.getHandle(id);
    // The SDK types updates with and without arguments by separate overloads.
    const send = () =>
      args.length === 0
        ? handle.executeUpdate(update as unknown as UpdateDefinition<ControlState, []>)
        : handle.executeUpdate(update as unknown as UpdateDefinition<ControlState, [unknown]>, { args: args as unknown as [unknown] });
    return await t.client.withDeadline(Date.now() + UPDATE_MS, send);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new ExitError(`run ${id} refused ${update.name}: ${err.cause?.message ?? err.message}`, EXIT.failed);
    if (err instanceof WorkflowNotFoundError) throw new ExitError(`run ${id} ended before it took ${update.name}`, EXIT.failed);
    throw new ExitError(`run ${id}: no answer to ${update.name} within ${UPDATE_MS / 1000}s (${(err as Error).message.split('\n')[0]})`, EXIT.failed);
  }
}

import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { workflowUiUrl } from '../config/temporal';
import type { NotifyWhenDoneInput } from '../workflows/notifyWhenDone';
import type { PlannedRun } from './mapping';

/** The 202 answer: the run's workflow id, its first run id, its Web UI link, and whether it existed already. */
export interface StartedRun {
  workflowId: string;
  runId: string;
  url: string;
  joined: boolean;
}

export interface TemporalTarget {
  client: Client;
  namespace: string;
  taskQueue: string;
  /** Base of the Web UI links (the dev server's UI by default). */
  uiUrl: string;
}

/** The workflow id of a run's callback notifier: one per run, so a redelivery registers nothing twice. */
export function notifierWorkflowId(workflowId: string): string {
  return `${workflowId}.notify`;
}

/** Starts a workflow unless one with this id ever ran (REJECT_DUPLICATE): its run id when this call started it, else undefined. */
async function startOnce(target: TemporalTarget, type: string, workflowId: string, input: unknown): Promise<string | undefined> {
  try {
    const handle = await target.client.workflow.start(type, { taskQueue: target.taskQueue, workflowId, args: [input], workflowIdReusePolicy: 'REJECT_DUPLICATE' });
    return handle.firstExecutionRunId;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
    throw err;
  }
}

/**
 * Starts the planned reproduceClaims run, or joins the one with its id (open or closed: the id is
 * also the run-store folder, never reused), then registers its callback notifier when the rule
 * has one. Registering again is harmless, and a redelivery retries a registration that failed.
 */
export async function startOrJoin(target: TemporalTarget, run: PlannedRun): Promise<StartedRun> {
  const started = await startOnce(target, 'reproduceClaims', run.workflowId, run.input);
  const runId = started ?? (await target.client.workflow.getHandle(run.workflowId).describe()).runId;
  if (run.rule.callback) {
    const notify: NotifyWhenDoneInput = { workflowId: run.workflowId, url: run.rule.callback.url, ...(run.rule.callback.secretEnv ? { secretEnv: run.rule.callback.secretEnv } : {}) };
    await startOnce(target, 'notifyWhenDone', notifierWorkflowId(run.workflowId), notify);
  }
  return { workflowId: run.workflowId, runId, url: workflowUiUrl(target.uiUrl, target.namespace, run.workflowId), joined: started === undefined };
}

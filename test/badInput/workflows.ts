import { WorkflowNotFoundError, type Client } from '@temporalio/client';

/** Visibility checks shared by the bad-input and security suites: what started, and what did not. */

/** Whether any execution with this workflow id exists, open or closed. */
export async function workflowExists(client: Client, workflowId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Every execution a visibility query finds (e.g. `WorkflowId STARTS_WITH 'x-'`, `TaskQueue = 'q'`). */
export async function listExecutions(client: Client, query: string): Promise<{ workflowId: string; runId: string }[]> {
  const out: { workflowId: string; runId: string }[] = [];
  for await (const w of client.workflow.list({ query })) out.push({ workflowId: w.workflowId, runId: w.runId });
  return out;
}

import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/workflow';

/** The root cause under the child-workflow and activity wrappers: what actually went wrong. */
function root(err: unknown): unknown {
  let e: unknown = err;
  while ((e instanceof ChildWorkflowFailure || e instanceof ActivityFailure) && e.cause) e = e.cause;
  return e;
}

export function rootMessage(err: unknown): string {
  const e = root(err);
  return e instanceof Error ? e.message : String(err);
}

export function rootFailure(err: unknown): ApplicationFailure | undefined {
  const e = root(err);
  return e instanceof ApplicationFailure ? e : undefined;
}

/** One line for a progress entry. */
export function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 200);
}

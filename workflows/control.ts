import { defineUpdate } from '@temporalio/workflow';

/** Operator control of a running reproduceClaims (SESSION3 contract): `ae pause`, `ae resume`, `ae abort`. */

export interface ControlState {
  paused: boolean;
  aborted?: string;
}

export const pauseUpdate = defineUpdate<ControlState, []>('pause');
export const resumeUpdate = defineUpdate<ControlState, []>('resume');
export const abortUpdate = defineUpdate<ControlState, [{ reason: string }]>('abort');

// ---- the workflow side (reproduceClaims installs the handlers) ----

/** RunProgress.waitingFor while paused. */
export const PAUSED_WAITING_FOR = 'resume (paused by an operator)';
export const ABORT_REASON_MAX = 200;

/** Why an abort's argument is refused (its validator throws this), or undefined when it is fine. */
export function abortArgProblem(arg: unknown): string | undefined {
  const reason = typeof arg === 'object' && arg !== null ? (arg as { reason?: unknown }).reason : undefined;
  if (typeof reason !== 'string') return 'abort needs { reason: "<why>" }: a reason (a string) goes into the failure and the record';
  if (reason.trim() === '') return 'abort needs a non-empty reason';
  if (reason.length > ABORT_REASON_MAX) return `abort's reason is ${reason.length} characters; at most ${ABORT_REASON_MAX}`;
  return undefined;
}

/** The run's failure once aborted: non-retryable, type `Aborted`, the operator's reason in the message. */
export function abortedMessage(reason: string): string {
  return `aborted by an operator: ${reason.trim()}`;
}

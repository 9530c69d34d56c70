import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { CallbackDelivery } from '../activities/notify';
import { parseInput } from './failures';
import { runId } from './inputs';

/** The run to watch and where to report its end; `secretEnv` names the variable with the signing key, never the key. */
export const notifyWhenDoneInput = z.strictObject({
  workflowId: runId,
  url: z
    .string({ error: 'expected an http(s) URL (a string)' })
    .max(2048)
    .regex(/^https?:\/\/[^\s/?#]+[^\s]*$/i, 'expected an http:// or https:// URL'),
  secretEnv: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'expected the NAME of an environment variable on the worker host')
    .optional(),
});
export type NotifyWhenDoneInput = z.input<typeof notifyWhenDoneInput>;

// A run takes hours to days; the watcher heartbeats, so a worker that dies is noticed within a minute.
const { awaitRunOutcome } = proxyActivities<Activities>({
  startToCloseTimeout: '60 days',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', nonRetryableErrorTypes: ['RunNotFound'] },
});

const { postCallback } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10, nonRetryableErrorTypes: ['CallbackRejected', 'CallbackSecretMissing'] },
});

/**
 * notifyWhenDone: waits for a run (usually reproduceClaims started by the webhook listener) to close,
 * however it closes, then POSTs {workflowId, status, verdicts, report} to the callback URL, signed
 * with X-Signature-256 when a secret is named. reproduceClaims itself knows nothing of it.
 */
export async function notifyWhenDone(rawInput: NotifyWhenDoneInput): Promise<CallbackDelivery> {
  const input = parseInput(notifyWhenDoneInput, rawInput, 'notifyWhenDone');
  setCurrentDetails(`waiting for **${input.workflowId}** to end`);
  const outcome = await awaitRunOutcome({ workflowId: input.workflowId });
  setCurrentDetails(`${input.workflowId} ${outcome.status}: posting the callback`);
  const delivery = await postCallback({ url: input.url, secretEnv: input.secretEnv, body: { workflowId: input.workflowId, ...outcome } });
  setCurrentDetails(`${input.workflowId} ${outcome.status}: callback answered ${delivery.status}`);
  return delivery;
}

import { Context } from '@temporalio/activity';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { signatureHeader } from '../webhook/signature';
import { classified } from './failures';

/** How a watched run ended, as the callback reports it. */
export interface RunOutcome {
  status: 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';
  /** The claims' verdicts (reproduceClaims' result); empty when the run judged none (prepare only, dry run, failure). */
  verdicts: { id: string; verdict: string; why: string }[];
  /** The report's files, relative to `runDir` on the worker host; null without a report. */
  report: { runDir: string; html?: string; md?: string; junit?: string; claims?: string } | null;
  /** The failure's message, when the run did not complete. */
  error?: string;
}

export interface CallbackDelivery {
  /** The HTTP status the callback URL answered. */
  status: number;
}

const CLOSED: Record<string, RunOutcome['status']> = { COMPLETED: 'completed', FAILED: 'failed', CANCELLED: 'cancelled', TERMINATED: 'terminated', TIMED_OUT: 'timed_out' };
const FIRST_POLL_MS = 1000;
const MAX_POLL_MS = 30_000;
const CALLBACK_TIMEOUT_MS = 15_000;

/** Verdicts and report of a completed run's result, read defensively: the watched workflow need not be reproduceClaims. */
export function outcomeOf(result: unknown): Pick<RunOutcome, 'verdicts' | 'report'> {
  const r = (result ?? {}) as { verdicts?: unknown; report?: unknown; runDir?: unknown };
  const verdicts = Array.isArray(r.verdicts) ? (r.verdicts as RunOutcome['verdicts']) : [];
  const report = r.report && typeof r.report === 'object' && typeof r.runDir === 'string' ? { runDir: r.runDir, ...(r.report as object) } : null;
  return { verdicts, report };
}

/** The URL without credentials or query, for messages: a token in a callback URL stays out of histories. */
function shown(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export function notifyActivities() {
  return {
    /**
     * Waits until `workflowId` closes, polling its status with a growing interval (1 s to 30 s) and
     * heartbeating, so a cancelled watcher stops and a dead worker is noticed; then its outcome.
     */
    async awaitRunOutcome({ workflowId }: { workflowId: string }): Promise<RunOutcome> {
      return classified(async () => {
        const ctx = Context.current();
        const handle = ctx.client.workflow.getHandle(workflowId);
        for (let wait = FIRST_POLL_MS; ; wait = Math.min(wait * 2, MAX_POLL_MS)) {
          ctx.heartbeat();
          let status: string;
          try {
            status = (await handle.describe()).status.name;
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) throw ApplicationFailure.nonRetryable(`no workflow ${workflowId} to wait for`, 'RunNotFound');
            throw err;
          }
          const closed = CLOSED[status];
          if (closed === 'completed') return { status: closed, ...outcomeOf(await handle.result()) };
          if (closed) {
            const error = await handle.result().then(
              () => undefined,
              (err: Error & { cause?: Error }) => (err.cause ?? err).message,
            );
            return { status: closed, verdicts: [], report: null, ...(error ? { error } : {}) };
          }
          await ctx.sleep(wait);
        }
      });
    },

    /**
     * POSTs `body` as JSON to `url`, with X-Signature-256 (HMAC-SHA256 of the exact body) when
     * `secretEnv` names a variable; its value is read here, on the worker host, and goes nowhere else.
     * A 3xx or 4xx answer is final (CallbackRejected); 5xx, 408, 429 and network errors are retried.
     */
    async postCallback({ url, secretEnv, body }: { url: string; secretEnv?: string; body: unknown }): Promise<CallbackDelivery> {
      return classified(async () => {
        const target = new URL(url);
        if (target.protocol !== 'http:' && target.protocol !== 'https:') throw ApplicationFailure.nonRetryable(`callback ${shown(target)}: only http and https URLs`, 'CallbackRejected');
        const text = JSON.stringify(body);
        const headers: Record<string, string> = { 'Content-Type': 'application/json', 'User-Agent': 'fragvisor-ae' };
        if (secretEnv) {
          const secret = process.env[secretEnv];
          if (!secret) throw ApplicationFailure.nonRetryable(`callback secret: ${secretEnv} is not set on the worker host`, 'CallbackSecretMissing');
          headers['X-Signature-256'] = signatureHeader(secret, text);
        }
        const signal = AbortSignal.any([Context.current().cancellationSignal, AbortSignal.timeout(CALLBACK_TIMEOUT_MS)]);
        const res = await fetch(target, { method: 'POST', headers, body: text, signal, redirect: 'manual' });
        await res.body?.cancel();
        if (res.ok) return { status: res.status };
        const message = `callback ${shown(target)} answered ${res.status}`;
        // Redirects are not followed (the signed body goes where the mapping says, nowhere else): final, like a 4xx.
        if (res.status < 500 && res.status !== 408 && res.status !== 429) throw ApplicationFailure.nonRetryable(message, 'CallbackRejected');
        throw new Error(message);
      });
    },
  };
}

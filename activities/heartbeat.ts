import { Context } from '@temporalio/activity';

/** The running activity's context, or undefined outside an activity (tests, scripts). */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/**
 * Runs `work` while heartbeating every `everyMs`, so a worker that dies mid-activity is noticed within
 * the heartbeat timeout and the activity sees cancellation. Outside an activity it just runs `work`.
 */
export async function withHeartbeat<T>(work: (signal: AbortSignal | undefined) => Promise<T>, everyMs = 2000, details?: () => unknown): Promise<T> {
  const ctx = activityContext();
  if (!ctx) return work(undefined);
  const beat = () => ctx.heartbeat(details?.());
  beat();
  const timer = setInterval(beat, everyMs);
  try {
    return await work(ctx.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

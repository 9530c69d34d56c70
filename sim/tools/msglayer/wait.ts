import type { World } from '../types';
import type { Rendezvous } from './rendezvous';

export class AbortedError extends Error {
  override readonly name = 'AbortedError';
  constructor() {
    super('aborted');
  }
}

/** setTimeout as a promise, cancelled by `signal` (0 = already elapsed). */
function realDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new AbortedError());
    }, { once: true });
  });
}

export interface WaitOptions {
  /** Give up after this much simulated time (and at least floorMs of real time); default: never. */
  simMs?: number;
  floorMs?: number;
  signal: AbortSignal;
}

/**
 * Resolves true as soon as `cond()` holds (re-checked at every rendezvous change), false when the
 * window ends first; rejects with AbortedError on `signal`.
 */
export function waitFor(world: World, rv: Rendezvous, cond: () => boolean, opts: WaitOptions): Promise<boolean> {
  if (opts.signal.aborted) return Promise.reject(new AbortedError());
  if (cond()) return Promise.resolve(true);
  return new Promise((resolve, reject) => {
    const timer = new AbortController();
    let done = false;
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      unwatch();
      timer.abort();
      opts.signal.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(new AbortedError()));
    const unwatch = rv.watch(() => {
      if (cond()) finish(() => resolve(true));
    });
    opts.signal.addEventListener('abort', onAbort, { once: true });
    if (opts.simMs !== undefined) {
      Promise.all([world.sleep(opts.simMs, timer.signal), realDelay(opts.floorMs ?? 0, timer.signal)]).then(
        () => finish(() => resolve(cond())),
        () => {}, // cancelled: the wait ended another way
      );
    }
  });
}

/** World.sleep that rejects with AbortedError when `signal` ends. */
export async function sleep(world: World, simMs: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw new AbortedError();
  try {
    await world.sleep(simMs, signal);
  } catch (err) {
    if (signal.aborted) throw new AbortedError();
    throw err;
  }
}

/**
 * Busy-until times of the guest's vCPUs, per kind of server. A request reserves its slot when it
 * arrives (first come, first served) and the response is held until the slot's end. Reserving on
 * an absolute timeline rather than sleeping each request's own duration keeps timer jitter from
 * accumulating, so the throughput ab measures follows the model. Servers sharing a vCPU (two
 * php-fpm workers pinned to 0x1) share its timeline, as they would share the CPU.
 */
export class Timelines {
  private readonly freeAt = new Map<string, number>();

  constructor(readonly now: () => number = () => performance.now()) {}

  /** Of `keys`, the one that can start first at or after `notBefore` (ties: the first listed). */
  earliest(keys: readonly string[], notBefore: number): { key: string; start: number } {
    let best: { key: string; start: number } | undefined;
    for (const key of keys) {
      const start = Math.max(notBefore, this.freeAt.get(key) ?? 0);
      if (!best || start < best.start) best = { key, start };
    }
    if (!best) throw new Error('no timeline to reserve on');
    return best;
  }

  /** Book `key` from `start` for `durationMs` (real ms); returns the end. */
  reserve(key: string, start: number, durationMs: number): number {
    const end = start + durationMs;
    this.freeAt.set(key, end);
    return end;
  }
}

/** Waits until absolute times on the same clock; all pending waits can be cancelled at stop. */
export class Sleeper {
  private readonly pending = new Map<NodeJS.Timeout, (done: boolean) => void>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Resolves true at `at`, false if cancelled first; a time already past resolves at once, without a timer. */
  until(at: number): Promise<boolean> {
    const delay = at - this.now();
    if (delay <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        resolve(true);
      }, delay);
      this.pending.set(timer, resolve);
    });
  }

  cancelAll(): void {
    for (const [timer, resolve] of this.pending) {
      clearTimeout(timer);
      resolve(false);
    }
    this.pending.clear();
  }
}

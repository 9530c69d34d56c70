/** Deliveries remembered at most: older ones are forgotten first (their runs still dedupe by workflow id). */
const MAX_DELIVERIES = 10_000;

/**
 * X-GitHub-Delivery ids seen within a window, with the answer their first delivery got (a promise, so
 * a replay that arrives while the first is still being handled waits for it instead of starting
 * again). A failed first attempt is forgotten, so a redelivery can try again.
 */
export class DeliveryWindow<T> {
  private readonly seen = new Map<string, { at: number; result: Promise<T> }>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private expire(t: number): void {
    // Insertion order is arrival order: the oldest are first.
    for (const [id, entry] of this.seen) {
      if (t - entry.at < this.windowMs && this.seen.size < MAX_DELIVERIES) break;
      this.seen.delete(id);
    }
  }

  /** The first delivery of `id` runs `handle`; a replay within the window gets the same promise and `replay: true`. */
  once(id: string, handle: () => Promise<T>): { result: Promise<T>; replay: boolean } {
    const t = this.now();
    this.expire(t);
    const known = this.seen.get(id);
    if (known) return { result: known.result, replay: true };
    const result = handle();
    this.seen.set(id, { at: t, result });
    result.catch(() => {
      if (this.seen.get(id)?.result === result) this.seen.delete(id);
    });
    return { result, replay: false };
  }
}

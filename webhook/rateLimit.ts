export interface BucketSettings {
  /** Requests allowed at once. */
  burst: number;
  /** Tokens added back per second. */
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Keys beyond this many are pruned (full buckets first): a flood of source addresses cannot grow memory without bound. */
const MAX_SOURCES = 10_000;

/**
 * Token buckets per source address and one for everyone: a request passes only when both have a
 * token, and then takes one from each. A refused request takes nothing. `now` is in milliseconds.
 */
export class RateLimiter {
  private readonly sources = new Map<string, Bucket>();
  private readonly everyone: Bucket;

  constructor(
    private readonly perSource: BucketSettings,
    private readonly global: BucketSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.everyone = { tokens: global.burst, at: now() };
  }

  private refill(bucket: Bucket, settings: BucketSettings, t: number): void {
    bucket.tokens = Math.min(settings.burst, bucket.tokens + ((t - bucket.at) / 1000) * settings.perSecond);
    bucket.at = t;
  }

  private sourceBucket(source: string, t: number): Bucket {
    let bucket = this.sources.get(source);
    if (!bucket) {
      if (this.sources.size >= MAX_SOURCES) this.prune(t);
      bucket = { tokens: this.perSource.burst, at: t };
      this.sources.set(source, bucket);
    }
    return bucket;
  }

  private prune(t: number): void {
    for (const [key, bucket] of this.sources) {
      this.refill(bucket, this.perSource, t);
      if (bucket.tokens >= this.perSource.burst) this.sources.delete(key);
    }
    // Still full of busy sources: forget the oldest half rather than grow.
    const excess = this.sources.size - MAX_SOURCES / 2;
    if (excess > 0) for (const key of [...this.sources.keys()].slice(0, excess)) this.sources.delete(key);
  }

  /** Undefined when the request may go on, else the whole seconds to wait (for Retry-After). */
  take(source: string): number | undefined {
    const t = this.now();
    const own = this.sourceBucket(source, t);
    this.refill(own, this.perSource, t);
    this.refill(this.everyone, this.global, t);
    if (own.tokens >= 1 && this.everyone.tokens >= 1) {
      own.tokens -= 1;
      this.everyone.tokens -= 1;
      return undefined;
    }
    const wait = (b: Bucket, s: BucketSettings) => (b.tokens >= 1 ? 0 : (1 - b.tokens) / s.perSecond);
    return Math.max(1, Math.ceil(Math.max(wait(own, this.perSource), wait(this.everyone, this.global))));
  }
}

/** How fast a key may go: `perSecond` sustained, `burst` at once after a pause. */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

/** Whether a request may go on, and if not, in how many whole seconds one will (for `Retry-After`). */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  /** When `tokens` was last computed (ms, on the monotonic clock). */
  at: number;
}

/** Keys tracked at most, whatever the traffic: beyond it the least recently seen key is forgotten. */
export const RATE_LIMITER_MAX_KEYS = 100_000;

/**
 * A token bucket per key, in this process's memory: each key holds up to `burst` tokens, refilled at
 * `perSecond`, and each request takes one. Several processes each apply it to the requests they receive.
 *
 * Bounded: a bucket that would be full again is the same as none, so it is forgotten; the map is kept in
 * order of last use and swept from its oldest end at each request (and by `size`), so it holds only the
 * keys seen within the last `burst / perSecond` seconds, and never more than `maxKeys` (forgetting a key
 * early only gives it its burst back).
 */
export class RateLimiter {
  private readonly buckets = new Map<string | number, Bucket>();
  /** A bucket untouched this long is full again. */
  private readonly refillMs: number;

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys = RATE_LIMITER_MAX_KEYS,
  ) {
    if (!(limit.perSecond > 0) || !(limit.burst >= 1)) {
      throw new Error(`a rate limit needs perSecond > 0 and burst >= 1, got ${JSON.stringify(limit)}`);
    }
    this.refillMs = (limit.burst / limit.perSecond) * 1_000;
  }

  /** Takes a token for `key` if there is one. A refused request takes nothing. */
  take(key: string | number): RateDecision {
    const now = performance.now();
    this.sweep(now);
    const bucket = this.buckets.get(key);
    const tokens =
      bucket === undefined
        ? this.limit.burst
        : Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 1_000) * this.limit.perSecond);
    if (tokens < 1) {
      return {
        allowed: false,
        retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / this.limit.perSecond)),
      };
    }
    // Re-inserted, so that the map stays in order of last use.
    this.buckets.delete(key);
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
    return { allowed: true };
  }

  /** The keys tracked now (those seen within the last `burst / perSecond` seconds). */
  get size(): number {
    this.sweep(performance.now());
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.at < this.refillMs) return;
      this.buckets.delete(key);
    }
  }
}

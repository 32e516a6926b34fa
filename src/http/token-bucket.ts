/**
 * http/token-bucket — requests per second per API token for the injection
 * API: one token bucket per token name, in this node's memory (a cluster
 * allows `rate` per node). Pure but for the map it keeps; time is passed in.
 *
 * Does not know HTTP: the caller turns a refusal into 429 with Retry-After.
 */

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /**
   * Takes one request for `name` at `now` with `rate` per second and a bucket of `burst`; rate 0 → always
   * allowed. Returns 0 when allowed, else the milliseconds until one request will be.
   */
  take(name: string, now: number, rate: number, burst: number): number {
    if (rate <= 0) return 0;
    const b = this.buckets.get(name) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * rate) / 1000);
    b.at = now;
    this.buckets.set(name, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 1000) / rate);
  }
}

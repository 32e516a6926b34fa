/**
 * http/token-bucket — requests per second per API token for the injection
 * API: one token bucket per token name, in this node's memory (a cluster
 * allows `rate` per node). Pure but for the map it keeps; time is passed in.
 * The arithmetic is queue/destination-gate's takeFromBucket, the one token bucket.
 *
 * Does not know HTTP: the caller turns a refusal into 429 with Retry-After.
 */
import { takeFromBucket, type Bucket } from '../queue/destination-gate.js';

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * Takes one request for `name` at `now` with `rate` per second and a bucket of `burst`; rate 0 → always
   * allowed. Returns 0 when allowed, else the milliseconds until one request will be. The bucket is the
   * destination gate's (takeFromBucket): `burst` tokens, refilled `burst` per burst/rate seconds.
   */
  take(name: string, now: number, rate: number, burst: number): number {
    if (rate <= 0) return 0;
    const { bucket, result } = takeFromBucket(this.buckets.get(name), now, { count: burst, perMs: (1000 * burst) / rate });
    this.buckets.set(name, bucket);
    return result.ok ? 0 : result.until - now;
  }
}

/**
 * inbound/auth-throttle — slows and then stops password guessing, per client
 * IP, across all its connections (a new connection per guess gains nothing):
 *
 * - every failed AUTH is answered only after `failureDelayMs` (Postfix's
 *   smtpd_error_sleep_time does the same for errors);
 * - once an address has `maxFailures` failures within `lockoutMs`, AUTH from
 *   it is refused with 454 4.7.0 without looking at the password, until its
 *   oldest counted failure is `lockoutMs` old.
 *
 * A success does not erase failures (one right password among many guesses
 * must not reset the count). Memory is bounded: at most `maxFailures`
 * timestamps per address and at most MAX_ADDRESSES addresses (the oldest
 * entry is dropped first). Time is injected. Does not check passwords.
 */

export interface AuthThrottleLimits {
  readonly failureDelayMs: number;
  readonly maxFailures: number;
  readonly lockoutMs: number;
}

const MAX_ADDRESSES = 100_000;

/** What a session asks (an AuthThrottle, or a session worker's question to the main thread's: app/session-workers). */
export interface AuthLimiter {
  lockedUntil(ip: string): number | undefined | Promise<number | undefined>;
  failed(ip: string): number | Promise<number>;
}

export class AuthThrottle implements AuthLimiter {
  private readonly failures = new Map<string, number[]>();

  /** Limits are read on every call, so a reload applies at once. */
  constructor(private readonly limits: AuthThrottleLimits, private readonly clock: () => number = Date.now) {}

  private recent(ip: string, now: number): number[] {
    const list = (this.failures.get(ip) ?? []).filter((t) => now - t < this.limits.lockoutMs);
    if (list.length === 0) this.failures.delete(ip);
    else this.failures.set(ip, list);
    return list;
  }

  /** When AUTH from `ip` is locked out: the time it opens again; undefined when it is not. */
  lockedUntil(ip: string): number | undefined {
    const now = this.clock();
    const list = this.recent(ip, now);
    if (list.length < this.limits.maxFailures) return undefined;
    return list[list.length - this.limits.maxFailures]! + this.limits.lockoutMs;
  }

  /** Records a failure; returns how long to wait before answering it. */
  failed(ip: string): number {
    const now = this.clock();
    const list = this.recent(ip, now);
    list.push(now);
    if (list.length > this.limits.maxFailures) list.splice(0, list.length - this.limits.maxFailures);
    this.failures.delete(ip); // re-insert: Map order is then least recently failed first
    this.failures.set(ip, list);
    if (this.failures.size > MAX_ADDRESSES) this.failures.delete(this.failures.keys().next().value as string);
    return this.limits.failureDelayMs;
  }
}

/**
 * destination/adaptive-rate — TCP's AIMD applied to a provider's rate limit,
 * as a pure reducer: a throttling reply (a `slow_down` rule) multiplies the
 * message rate by the rule's factor; each delivery adds `increase / rate`, so
 * a minute's worth of deliveries at the current rate raises it by `increase`
 * messages per minute, up to the ceiling (the provider preset's rate, or
 * delivery.destination_rate), where it stays until it expires (a dropped
 * rate would be taken back from the gate row, still lower, by `absorb`). The sender
 * settles just under what the provider allows instead of alternating full
 * speed and silence.
 *
 * The rate descends from the cut that made it (`cutAt`): across nodes, a
 * later cut wins over growth from an earlier one (queue/destination-gate's
 * `newerRate`). It expires `ttlMs` after the cut when nothing renews it.
 *
 * No clock of its own (`now` is passed in), no I/O, no log.
 */
import type { LearnedRate } from '../queue/model.js';

/** The lowest rate a cut goes to: one message a minute. */
export const MIN_PER_MINUTE = 1;

/** Messages per minute of a `count per perMs` rate. */
export const perMinute = (r: { readonly count: number; readonly perMs: number }): number => (r.count * 60_000) / r.perMs;

/** A rate of `n` messages per minute, paced one at a time (a token bucket of one). */
export const paced = (n: number): { readonly count: number; readonly perMs: number } => ({ count: 1, perMs: 60_000 / Math.max(MIN_PER_MINUTE, n) });

/**
 * A throttling reply at `now`: the rate becomes `factor` × the rate in force (`current`, messages per minute;
 * what was delivered in the last minute when no rate was set), never below MIN_PER_MINUTE.
 */
export function cutRate(current: number, factor: number, reply: string, now: number, ttlMs: number): LearnedRate {
  return { perMinute: Math.max(MIN_PER_MINUTE, current * factor), cutAt: now, until: now + ttlMs, reply };
}

/**
 * A delivery: the learned rate grows by `increase / perMinute` (additive increase), never above `ceiling`.
 * Without a learned rate in force nothing changes (undefined).
 */
export function grewRate(r: LearnedRate | undefined, increase: number, ceiling: number | undefined, now: number): LearnedRate | undefined {
  if (!r || r.until <= now) return undefined;
  return { ...r, perMinute: Math.min(ceiling ?? Infinity, r.perMinute + increase / r.perMinute) };
}

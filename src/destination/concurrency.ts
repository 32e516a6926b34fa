/**
 * destination/concurrency — adaptive concurrency of one destination as a pure
 * controller (Postfix's qmgr_queue.c feedback, simplified): events in, the
 * number of connections the destination may have now out.
 *
 * - A destination starts at `initial` (delivery.initial_connections_per_destination).
 * - Positive feedback: each successful session adds 1/limit, so the limit
 *   grows by one per window of `limit` successes, up to the configured cap
 *   (Postfix's default "1/concurrency" feedback).
 * - Negative feedback: a reply asking for fewer connections ("too many
 *   connections", 4.7.0 / 4.7.28 at greeting or MAIL) while `others` of our
 *   sessions to it were working sets the limit to at most `others` (never
 *   below 1) and remembers that as a ceiling for `ceilingTtlMs`, so the limit
 *   does not grow back into the same refusal (that would cost a 421 per
 *   window). A connect/greeting timeout lowers the limit by one, no ceiling.
 * - A failure with no other session working is a failing cohort: not this
 *   controller's business — the destination goes to backoff as ever, and the
 *   limit is left as it is.
 *
 * No clock of its own (`now` is passed in), no I/O.
 */

export interface ConcurrencyState {
  /** Connections allowed now (≥ 1). */
  readonly limit: number;
  /** Positive feedback accumulated towards the next +1. */
  readonly credit: number;
  /** A learned ceiling (from a "too many connections" reply), until `ceilingUntil`. */
  readonly ceiling?: number;
  readonly ceilingUntil?: number;
  /** The reply that set the ceiling, for `halcyon destinations`. */
  readonly ceilingReply?: string;
}

export function initialConcurrency(initial: number, cap: number): ConcurrencyState {
  return { limit: Math.max(1, Math.min(initial, cap)), credit: 0 };
}

const ceilingAt = (s: ConcurrencyState, now: number): number =>
  (s.ceiling !== undefined && (s.ceilingUntil ?? 0) > now ? s.ceiling : Infinity);

/** Connections the destination may have at `now`, under the configured cap. */
export function concurrencyLimit(s: ConcurrencyState, cap: number, now: number): number {
  return Math.max(1, Math.min(cap, s.limit, ceilingAt(s, now)));
}

/** A session that worked (greeting, EHLO and a transaction went through). */
export function onSessionSuccess(s: ConcurrencyState, cap: number, now: number): ConcurrencyState {
  const top = Math.min(cap, ceilingAt(s, now));
  const base = s.ceiling !== undefined && (s.ceilingUntil ?? 0) <= now ? { limit: s.limit, credit: s.credit } : s;
  if (base.limit >= top) return { ...base, limit: Math.max(1, Math.min(base.limit, top)), credit: 0 };
  const credit = base.credit + 1 / base.limit;
  return credit >= 1 ? { ...base, limit: base.limit + 1, credit: credit - 1 } : { ...base, credit };
}

/**
 * The remote asked for fewer connections while `others` of our sessions to it
 * were working (others ≥ 1; with none it is a failing cohort → backoff instead).
 */
export function onTooManyConnections(s: ConcurrencyState, others: number, now: number, ceilingTtlMs: number, reply: string): ConcurrencyState {
  const limit = Math.max(1, Math.min(s.limit - 1, others));
  const ceiling = Math.min(limit, ceilingAt(s, now));
  return { limit, credit: 0, ceiling, ceilingUntil: now + ceilingTtlMs, ceilingReply: reply };
}

/** A connect or greeting timeout while others were working: one fewer, no ceiling. */
export function onSessionTimeout(s: ConcurrencyState): ConcurrencyState {
  return { ...s, limit: Math.max(1, s.limit - 1), credit: 0 };
}

/**
 * destination/learned-limits — invariant I6 ("a limit is learned once") as a
 * pure reducer: when a destination answers a recipient-limit reply (spec
 * rule 3) after K accepted recipients, later transactions to it carry at
 * most K recipients until the learned limit expires.
 *
 * A lower K replaces a higher one; a new observation restarts the expiry.
 * Nothing here raises a limit: it expires (delivery.learned_limit_ttl), and
 * the next limit reply, if the server still has one, teaches it again.
 * No clock of its own (`now` is passed in), no I/O.
 */

export interface LearnedRecipientLimit {
  readonly maxRecipients: number;
  readonly until: number;
  readonly learnedAt: number;
  /** The limit reply, as the remote sent it. */
  readonly reply: string;
}

/** The destination said "limit reached" after `accepted` (≥ 1) recipients of a transaction. */
export function learnRecipientLimit(prev: LearnedRecipientLimit | undefined, accepted: number, reply: string, now: number, ttlMs: number): LearnedRecipientLimit | undefined {
  if (!(accepted >= 1)) return prev && prev.until > now ? prev : undefined;
  const current = prev && prev.until > now ? prev.maxRecipients : Infinity;
  return { maxRecipients: Math.min(current, accepted), until: now + ttlMs, learnedAt: now, reply };
}

/** Recipients a transaction to the destination may carry at `now`. */
export function recipientLimit(learned: LearnedRecipientLimit | undefined, configured: number, now: number): number {
  return learned && learned.until > now ? Math.max(1, Math.min(configured, learned.maxRecipients)) : configured;
}

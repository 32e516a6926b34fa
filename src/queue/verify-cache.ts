/**
 * queue/verify-cache — the recipient verification cache (Postfix's verify(8)
 * database), kept in the queue store so every node on the queue's database
 * shares it: one row per address that a probe answered definitely, with the
 * remote's reply and three times — when it was checked, when it should be
 * probed again (refresh) and when it is forgotten (expiry).
 *
 * Only definite answers are stored: the address exists (the remote took
 * RCPT TO) or does not (the remote refused it for the address itself). A
 * probe that met a temporary failure stores nothing, so it never overwrites
 * what an earlier probe learned. Addresses are keys as given (the caller
 * normalizes them); the newest definite answer replaces the row.
 *
 * Does not probe, decide what a reply means, nor pick the times: inbound/
 * verifier and inbound/verify-policy do. Holds no SQL (sqlite/ and pg/ do).
 */
import type { LastReply } from './model.js';

/** What a probe showed: the address takes mail, or it does not exist. */
export type VerifyVerdict = 'exists' | 'absent';

export interface VerifyEntry {
  /** The cache key: the address as the verifier normalized it. */
  readonly address: string;
  readonly verdict: VerifyVerdict;
  /** The remote's reply to the probe's RCPT TO (its text is what a refused client hears). */
  readonly reply: LastReply;
  readonly checkedAt: number;
  /** From then on a lookup still answers from the row, and a new probe refreshes it. */
  readonly refreshAt: number;
  /** From then on the row is gone for lookups (and removed by the next clean-up). */
  readonly expiresAt: number;
}

export interface VerifyCache {
  /** The entry for `address` that has not expired at `now`, or undefined. */
  getVerification(address: string, now: number): Promise<VerifyEntry | undefined>;
  /** Writes (or replaces) the entry of its address. */
  putVerification(entry: VerifyEntry): Promise<void>;
  /** Forgets one address (an operator's "probe it again"). Returns whether a row was there. */
  deleteVerification(address: string): Promise<boolean>;
  /** Entries not expired at `now`, by address, at most `limit`. */
  listVerifications(now: number, limit: number): Promise<VerifyEntry[]>;
  /** Deletes up to `limit` rows expired at `now`. Returns how many. */
  removeExpiredVerifications(now: number, limit: number): Promise<number>;
}

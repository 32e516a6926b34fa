/**
 * inbound/verify-policy — recipient verification's decisions, as pure
 * functions (the table docs/decisions/0010 reads against): what a cached
 * entry means now, what a probe's reply says about the address, what is
 * cached and for how long, and what the client's RCPT hears.
 *
 * | probe found                                   | verdict  | cached            | RCPT answer                      |
 * |-----------------------------------------------|----------|-------------------|----------------------------------|
 * | 2xx to RCPT TO                                | exists   | 7d refresh / 31d  | 250 (accepted)                   |
 * | 5xx classed InvalidRecipient, BadDomain or    | absent   | 3h refresh / 3d   | 550 5.1.1 + the remote's text    |
 * |   InactiveMailbox (smtp/bounce-rules)         |          |                   |                                  |
 * | any other 5xx (full mailbox, policy …)        | unknown  | nothing           | 250: nothing said the address    |
 * |                                               |          |                   |   is wrong; delivery decides     |
 * | 4xx to RCPT TO or MAIL FROM, no connection,   | unknown  | nothing           | 450 4.1.1 (or 250 with           |
 * |   backoff, no free slot, still pending        |          |                   |   unreachable = "accept")        |
 *
 * A verdict of `absent` is only ever given for a failure that speaks for the
 * address itself, the same line the suppression list draws: a policy or
 * reputation refusal never makes Halcyon refuse an address. The class comes
 * from the project's one bounce classifier. Does no I/O: inbound/verifier does.
 */
import type { LastReply } from '../queue/model.js';
import type { VerifyEntry, VerifyVerdict } from '../queue/verify-cache.js';
import { SUPPRESSING_CLASSES, type BounceClass } from '../smtp/bounce-class.js';
import { formatReply } from '../destination/reply-rules.js';

export interface VerifySettings {
  /** How long a RCPT waits for a probe in flight. */
  readonly waitMs: number;
  readonly unreachable: 'defer' | 'accept';
  readonly positiveRefreshMs: number;
  readonly positiveExpireMs: number;
  readonly negativeRefreshMs: number;
  readonly negativeExpireMs: number;
}

/**
 * What a probe's reply says about the address, given its bounce class (smtp/bounce-rules, the project's one
 * classifier): 2xx → exists; a permanent failure whose class speaks for the address itself (the classes that
 * suppress: InvalidRecipient, BadDomain, InactiveMailbox) → absent; anything else → unknown (not cached).
 */
export function probeVerdict(reply: LastReply, cls: BounceClass): VerifyVerdict | 'unknown' {
  if (reply.code >= 200 && reply.code < 300) return 'exists';
  if (reply.code >= 500 && reply.code < 600 && SUPPRESSING_CLASSES.has(cls)) return 'absent';
  return 'unknown';
}

/** The cache row a definite answer becomes (Postfix's verify(8) times by default). */
export function cacheEntry(address: string, verdict: VerifyVerdict, reply: LastReply, now: number, s: VerifySettings): VerifyEntry {
  const exists = verdict === 'exists';
  return {
    address, verdict, reply, checkedAt: now,
    refreshAt: now + (exists ? s.positiveRefreshMs : s.negativeRefreshMs),
    expiresAt: now + (exists ? s.positiveExpireMs : s.negativeExpireMs),
  };
}

/** What a lookup does with the row it found: answer from it, and/or probe (again). */
export function cachePlan(entry: VerifyEntry | undefined, now: number): { readonly answer?: VerifyEntry; readonly probe: boolean } {
  if (entry === undefined || entry.expiresAt <= now) return { probe: true };
  return { answer: entry, probe: now >= entry.refreshAt };
}

/** The cache key of an address: lower-cased whole (one probe and one row for Bob@ and bob@). */
export const verifyKey = (address: string): string => address.toLowerCase();

/** What the verifier learned for one RCPT, before it becomes a reply. */
export type Finding =
  | { readonly kind: 'verdict'; readonly verdict: VerifyVerdict | 'unknown'; readonly reply: LastReply }
  /** No answer about the address: why, in Halcyon's words (backoff, pending, unreachable, a 4xx …). */
  | { readonly kind: 'undecided'; readonly why: string };

export type RcptAnswer =
  | { readonly kind: 'accept' }
  | { readonly kind: 'refuse'; readonly code: number; readonly enhanced: string; readonly text: string; readonly reason: 'unknown_user' | 'unverified' };

/** At most this much of a remote's text goes back to our client (one reply line stays under 512 octets). */
const MAX_REMOTE_TEXT = 300;

/** Text fit for one reply line to our client: no control characters, bounded. */
function oneLine(text: string): string {
  const t = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return t.length > MAX_REMOTE_TEXT ? `${t.slice(0, MAX_REMOTE_TEXT)}…` : t;
}

function remoteSaid(reply: LastReply): string {
  const text = oneLine(formatReply(reply));
  return reply.host && !reply.ours ? `host ${reply.host} said: ${text}` : text;
}

/**
 * What a probe that got no reply to its RCPT TO found (delivery/probe's trouble): a permanent refusal before
 * RCPT that is not the destination failing (MAIL FROM:<> refused, SMTPUTF8 missing) says nothing about the
 * address (delivery will meet it); anything else (no connection, 421, a 4xx) leaves it undecided, in words
 * that name the host.
 */
export function troubleFinding(reply: LastReply, destinationFailure: boolean): Finding {
  if (!destinationFailure && reply.code >= 500) return { kind: 'verdict', verdict: 'unknown', reply };
  return { kind: 'undecided', why: `${reply.host ? `host ${reply.host}: ` : ''}${oneLine(reply.ours ? reply.text : formatReply(reply))}` };
}

/** The client's RCPT answer, from what was found about `address`. */
export function rcptAnswer(address: string, found: Finding, s: Pick<VerifySettings, 'unreachable'>): RcptAnswer {
  if (found.kind === 'verdict' && found.verdict === 'absent') {
    return { kind: 'refuse', code: 550, enhanced: '5.1.1', text: `<${address}>: Recipient address rejected: undeliverable address: ${remoteSaid(found.reply)}`, reason: 'unknown_user' };
  }
  if (found.kind === 'verdict' && found.verdict === 'exists') return { kind: 'accept' };
  // A permanent refusal that is not about the address: not ours to judge at RCPT (delivery will meet it).
  if (found.kind === 'verdict' && found.reply.code >= 500) return { kind: 'accept' };
  if (s.unreachable === 'accept') return { kind: 'accept' };
  const why = found.kind === 'verdict' ? remoteSaid(found.reply) : found.why;
  return { kind: 'refuse', code: 450, enhanced: '4.1.1', text: `<${address}>: Recipient address rejected: unverified address: ${why}`, reason: 'unverified' };
}

/**
 * queue/describe — how the queue's rows read to a person, for the CLI and the
 * dashboard alike: text that came with mail or from a remote made safe to
 * show (control characters escaped, never raw), ages, one reply's wording
 * ("host H said: …" only when H said it; Halcyon's own deferrals say so),
 * and a waiting recipient's next attempt.
 *
 * It sits below both cli/ and http/ so neither imports the other for it. The
 * dashboard serves this file to the browser as it is (http/dashboard): it
 * imports nothing but types. Does not print and does not lay out tables
 * (cli/format does).
 */
import type { AttemptRow, LastReply, NextTry, RecipientRow } from './model.js';

/** C0 controls but TAB (and LF when kept), DEL, C1 controls, and the bidirectional overrides that reorder what is shown. */
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_KEEP_LF = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function escapeChar(c: string): string {
  const n = c.codePointAt(0) ?? 0;
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
}

/** Text from mail made safe for a terminal: controls escaped; with `keepNewlines`, LF stays a line break (a CR before it is dropped). */
export function printable(s: string, keepNewlines = false): string {
  if (!keepNewlines) return s.replace(UNSAFE, escapeChar);
  return s.replace(/\r\n/g, '\n').replace(UNSAFE_KEEP_LF, escapeChar);
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * One reply as a person reads it: "host H said: 550 5.1.1 … (in reply to RCPT TO)" when H answered;
 * "connect to H failed: connect failed (ECONNREFUSED) [no reply; recorded as 451 4.4.1]" when no reply came;
 * "Halcyon: destination in backoff after H: … [recorded as 451 4.4.1]" when Halcyon deferred without trying.
 * A failure's bounce class follows in brackets: "… (in reply to RCPT TO) [InvalidRecipient]".
 */
export function describeReply(l: LastReply): string {
  return printable(`${replyText(l)}${l.class && l.class !== 'Delivered' ? ` [${l.class}]` : ''}`);
}

function replyText(l: LastReply): string {
  const code = `${l.code}${l.enhanced ? ` ${l.enhanced}` : ''}`;
  if (l.ours) {
    // Halcyon's own deferral (a destination backoff): nobody was asked, so no host is named as saying it.
    if (!l.host) return `Halcyon: ${l.text} [recorded as ${code}]`;
    const step = l.command === 'connect' || l.command === undefined ? 'connect to' : `${l.command} with`;
    return `${step} ${l.host} failed: ${l.text} [no reply; recorded as ${code}]`;
  }
  const where = l.host ? `host ${l.host} said: ` : '';
  const cmd = l.command ? ` (in reply to ${l.command})` : '';
  return `${where}${code} ${l.text}${cmd}`;
}

export function describeLast(r: RecipientRow): string {
  return r.lastReply ? describeReply(r.lastReply) : '';
}

/** " next in 5m (destination backoff)", " held", or "" for a recipient that is not waiting. */
export function nextText(r: RecipientRow & { readonly next?: NextTry }, now: number, prefix = 'next in'): string {
  if (r.state !== 'deferred' && r.state !== 'queued') return '';
  const n = r.next ?? { at: r.nextAttemptAt, why: 'retry' as const };
  if (n.why === 'held') return ' held (no attempt until released)';
  if (n.why === 'destination suspended') return ' destination suspended';
  return ` ${prefix} ${age(n.at - now)}${n.why === 'destination backoff' ? ' (destination backoff)' : ''}`;
}

/**
 * How many times a recipient was tried, from its history: every recorded reply but Halcyon's own
 * deferrals (never tried). Not `RecipientRow.attempts`, which counts only what moves the recipient's
 * own retry schedule — a connection-level failure waits on the destination's backoff instead and is
 * not counted there, so it read "0 attempt(s)" above two failed attempts.
 */
export function attemptsMade(history: readonly AttemptRow[]): number {
  return history.filter((a) => !(a.reply?.ours === true && a.reply.host === undefined)).length;
}

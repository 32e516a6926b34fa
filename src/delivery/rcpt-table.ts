/**
 * delivery/rcpt-table — the decision tables of spec/outbound-replies.md as
 * pure functions: what one remote reply means for one recipient.
 *
 * - `classifyRcptReply` — a reply to `RCPT TO`, given `A` (recipients accepted
 *   so far in this transaction) and the per-mailbox 552 policy. Enhanced codes
 *   decide first, then the basic-code table where `A` decides.
 * - `classifyAfterRcpt` — a reply to `MAIL FROM`, `DATA`, a `BDAT` chunk or
 *   end of data, for the recipients it concerns.
 *
 * It does not keep any state (that is `transaction.ts`), does no I/O and
 * never looks at the clock. Each branch names the spec row it implements so
 * the code can be read against the spec line by line.
 */

import type { Reply } from '../smtp/reply.js';

/** config `delivery.mailbox_full`: how a remote `5.2.2` to RCPT is taken. */
export interface MailboxPolicy {
  readonly mailboxFull: 'permanent' | 'transient';
}

export const DEFAULT_MAILBOX_POLICY: MailboxPolicy = { mailboxFull: 'permanent' };

/** The command a reply answered, as written into a recipient's last reply. */
export type Command = 'MAIL FROM' | 'RCPT TO' | 'DATA' | 'BDAT' | 'end of DATA';

export type RcptVerdict =
  | { readonly kind: 'accepted'; readonly reply: Reply }
  /** Permanent → one DSN for this recipient. */
  | { readonly kind: 'failed'; readonly reply: Reply }
  /** Temporary → retried with backoff. */
  | { readonly kind: 'deferred'; readonly reply: Reply }
  /** The server's recipient limit: into the next transaction at once, no failure counted. */
  | { readonly kind: 'limit-deferred'; readonly reply: Reply };

export interface RcptDecision {
  readonly verdict: RcptVerdict;
  /** Issue no further `RCPT TO` in this transaction. */
  readonly stopRcpt: boolean;
  /** The connection is over (421, or a reply no server may give here): the destination records a failure. */
  readonly connectionLevel: boolean;
  /** Which rule decided, for logs and for tests that read against the spec. */
  readonly rule: RcptRule;
}

export type RcptRule =
  | '2xx'
  | '421'
  | 'not-a-reply' // 1xx/3xx/garbage to RCPT: the peer is broken (beyond the spec)
  | 'X.5.3 A>=1'
  | 'X.5.3 A=0'
  | 'X.2.2'
  | 'enhanced class'
  | '552 A=0'
  | '552 A>=1'
  | '452 A=0'
  | '452 A>=1'
  | 'other 4xx'
  | 'other 5xx';

/**
 * The enhanced code a reply carries, if it counts: `N.N.N` at the start of
 * the text with N equal to the reply's class (spec: "An enhanced code
 * counts when …"). `smtp/reply` already checks this when parsing; checked
 * again here because a Reply can be built by hand.
 */
export function enhancedOf(reply: Reply): { cls: number; subject: number; detail: number } | undefined {
  if (!reply.enhanced) return undefined;
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})$/.exec(reply.enhanced);
  if (!m || Number(m[1]) !== Math.floor(reply.code / 100)) return undefined;
  return { cls: Number(m[1]), subject: Number(m[2]), detail: Number(m[3]) };
}

const decide = (
  kind: RcptVerdict['kind'],
  reply: Reply,
  rule: RcptRule,
  stopRcpt = false,
  connectionLevel = false,
): RcptDecision => ({ verdict: { kind, reply }, stopRcpt, connectionLevel, rule });

/** A reply to `RCPT TO`. `acceptedSoFar` is A; `policy` is the per-mailbox 552 policy. */
export function classifyRcptReply(reply: Reply, acceptedSoFar: number, policy: MailboxPolicy): RcptDecision {
  const A = acceptedSoFar;
  const code = reply.code;

  // Row "2xx": accepted, whatever else the reply says (also after a limit reply).
  if (code >= 200 && code < 300) return decide('accepted', reply, '2xx');
  // Row "421 (at any point)": before the enhanced codes, because the server
  // closes the connection whatever code it attaches.
  if (code === 421) return decide('deferred', reply, '421', true, true);
  // Not in the spec: 1xx/3xx/unparseable to RCPT. The peer is broken; treat
  // it like a lost connection rather than guess a recipient's fate.
  if (code < 400 || code >= 600) return decide('deferred', reply, 'not-a-reply', true, true);

  // "Enhanced status codes decide first."
  const enh = enhancedOf(reply);
  if (enh) {
    if (enh.subject === 5 && enh.detail === 3) {
      return A >= 1
        ? decide('limit-deferred', reply, 'X.5.3 A>=1', true) // rule 3
        : decide('deferred', reply, 'X.5.3 A=0'); // never retried at once as a first recipient
    }
    if (enh.subject === 2 && enh.detail === 2) {
      // Rule 1, whatever A is; the mailbox_full policy applies to the permanent class.
      if (enh.cls === 4) return decide('deferred', reply, 'X.2.2');
      return decide(policy.mailboxFull === 'transient' ? 'deferred' : 'failed', reply, 'X.2.2');
    }
    return decide(enh.cls === 4 ? 'deferred' : 'failed', reply, 'enhanced class');
  }

  // No enhanced code: the table, where A decides.
  if (code === 552) return A >= 1 ? decide('limit-deferred', reply, '552 A>=1', true) : decide('failed', reply, '552 A=0');
  if (code === 452) return A >= 1 ? decide('limit-deferred', reply, '452 A>=1', true) : decide('deferred', reply, '452 A=0');
  if (code < 500) return decide('deferred', reply, 'other 4xx');
  return decide('failed', reply, 'other 5xx');
}

/** What a reply after the recipients does to the recipients it concerns. */
export type AfterRcptEffect =
  | { readonly kind: 'proceed' } // MAIL 2xx, DATA 354, BDAT chunk 2xx
  | { readonly kind: 'delivered' } // end of data 2xx
  | { readonly kind: 'deferred'; readonly connectionLevel: boolean; readonly possibleDuplicate: boolean }
  | { readonly kind: 'failed' };

/**
 * The second table of the spec (plus the `MAIL FROM` reply, from the brief):
 *
 * | command      | reply | effect                                   |
 * |--------------|-------|------------------------------------------|
 * | MAIL FROM    | 2xx   | proceed                                  |
 * | DATA         | 354   | proceed (send the content)               |
 * | BDAT (chunk) | 2xx   | proceed (send the next chunk)            |
 * | end of DATA  | 2xx   | delivered                                |
 * | any          | 421   | deferred, connection-level               |
 * | any          | 4xx   | deferred                                 |
 * | any          | 5xx   | failed → DSN                             |
 * | any          | other | deferred, connection-level (broken peer) |
 *
 * An unexpected reply at end of data also marks "possible duplicate": the
 * server may have taken the message before it said something we can't read.
 */
export function classifyAfterRcpt(command: Exclude<Command, 'RCPT TO'>, reply: Reply): AfterRcptEffect {
  const code = reply.code;
  const ok = command === 'DATA' ? code === 354 : code >= 200 && code < 300;
  if (ok) return command === 'end of DATA' ? { kind: 'delivered' } : { kind: 'proceed' };
  if (code === 421) return { kind: 'deferred', connectionLevel: true, possibleDuplicate: false };
  if (code >= 400 && code < 500) return { kind: 'deferred', connectionLevel: false, possibleDuplicate: false };
  if (code >= 500 && code < 600) return { kind: 'failed' };
  return { kind: 'deferred', connectionLevel: true, possibleDuplicate: command === 'end of DATA' };
}

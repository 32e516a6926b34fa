/**
 * delivery/failure-policy — the ONE place that decides what a failure of a
 * session means beyond the recipient it happened to: defer or bounce the
 * recipients not yet decided, charge the destination (its backoff), try the
 * next MX host, and whether the reply asks us to open fewer connections.
 * Postfix's `smtp_trouble.c` (smtp_sess_fail / smtp_site_fail /
 * smtp_mesg_fail, with its "throttle" flag) is the model.
 *
 * Scope of each decision, as Postfix names them:
 * - `recipient` — one RCPT's own reply: decided by `rcpt-table.ts` (the
 *   spec's table), never here; listed so the scopes read in one place;
 * - `transaction` — MAIL FROM / DATA / end-of-data replies that end this
 *   transaction only: its recipients deferred or bounced, connection kept;
 * - `session` — the connection is over (421, timeout, reset, a broken
 *   peer): the batch is deferred and the destination records a failure;
 * - `host` — before a session exists (connect, greeting, EHLO, STARTTLS,
 *   AUTH): this host is unusable, try the next one; when none is left the
 *   destination records a failure;
 * - `resolve` — DNS said where (not) to go: permanent → bounce, temporary →
 *   defer and charge the destination.
 *
 * `throttle` is the concurrency feedback (Postfix's qmgr "negative
 * feedback"): a `421` or any 4xx whose text says "too many connections"
 * (or kin), an enhanced `4.7.0`/`4.7.28` at greeting, EHLO or MAIL FROM,
 * and connection timeouts. The scheduler decides whether that shrinks the
 * destination's concurrency (others are working) or is a failing cohort
 * (backoff as ever): this module only says the reply asked.
 *
 * Pure: a table of (command, reply class) → decision. No clock, no state,
 * no I/O. Reply rules (`reply-rules.ts`) are applied by the scheduler on top.
 */
import type { LastReply } from '../queue/model.js';

/** Where in a delivery the event happened. */
export type TroubleStage =
  | 'resolve' | 'connect' | 'greeting' | 'EHLO' | 'HELO' | 'STARTTLS' | 'AUTH'
  | 'MAIL FROM' | 'RCPT TO' | 'DATA' | 'BDAT' | 'end of DATA' | 'RSET';

export type TroubleScope = 'recipient' | 'transaction' | 'session' | 'host' | 'resolve';

export interface TroubleDecision {
  readonly scope: TroubleScope;
  /** What happens to the recipients this event concerns that have no verdict of their own. */
  readonly recipients: 'defer' | 'bounce';
  /** The destination records a connection-level failure (its backoff governs the next try). */
  readonly destinationFailure: boolean;
  /** Try the next MX host / route host before giving up on the destination. */
  readonly nextHost: boolean;
  /** The remote asked for fewer connections (or did not answer in time): concurrency feedback. */
  readonly throttle: boolean;
  /** Which row decided, for logs and tests. */
  readonly rule: string;
}

/** Reply texts that mean "you have too many connections open to me" (Gmail, Yahoo, Outlook, Postfix, Exim wordings). */
const TOO_MANY = /too many (concurrent |simultaneous )?(smtp )?(connections|sessions)|connection (rate|limit)|(max|maximum) (number of )?connections|too many (smtp )?sessions|try again later.*(concurren|connections)/i;

/** Enhanced codes that mean "policy: slow down" at session level (RFC 3463 4.7.0; 4.7.28 is Gmail's rate limit). */
const THROTTLE_ENHANCED = new Set(['4.7.0', '4.7.28']);

/** Our own reply for "no answer" (connection.ts `lostReply`): 451 4.4.1 with a timeout text. */
export function isTimeout(r: Pick<LastReply, 'code' | 'enhanced' | 'text'>): boolean {
  return r.code === 451 && r.enhanced === '4.4.1' && /\btimeout\b/i.test(r.text);
}

/** The reply asks for fewer connections (text or enhanced code), whatever its stage. */
export function asksToThrottle(r: Pick<LastReply, 'code' | 'enhanced' | 'text'>): boolean {
  if (r.code < 400 || r.code >= 500) return false;
  return TOO_MANY.test(r.text) || (r.enhanced !== undefined && THROTTLE_ENHANCED.has(r.enhanced));
}

const SESSION_STAGES: ReadonlySet<TroubleStage> = new Set(['greeting', 'EHLO', 'HELO', 'MAIL FROM']);
const HOST_STAGES: ReadonlySet<TroubleStage> = new Set(['connect', 'greeting', 'EHLO', 'HELO', 'STARTTLS', 'AUTH']);

const d = (scope: TroubleScope, recipients: 'defer' | 'bounce', destinationFailure: boolean, nextHost: boolean, throttle: boolean, rule: string): TroubleDecision =>
  ({ scope, recipients, destinationFailure, nextHost, throttle, rule });

/**
 * The decision table. `reply` is the server's reply, or our own stand-in for
 * no reply (451 4.4.1 timeout / 4.4.2 dropped, from connection.ts).
 *
 * | stage                              | reply                      | scope       | rcpts  | dest fail | next host | throttle          |
 * |------------------------------------|----------------------------|-------------|--------|-----------|-----------|-------------------|
 * | resolve                            | 5xx                        | resolve     | bounce | no        | no        | no                |
 * | resolve                            | 4xx                        | resolve     | defer  | yes       | no        | no                |
 * | connect                            | timeout                    | host        | defer  | yes       | yes       | yes               |
 * | connect                            | refused / reset            | host        | defer  | yes       | yes       | no                |
 * | greeting, EHLO, HELO               | too-many text, 4.7.0/4.7.28| host        | defer  | yes       | yes       | yes               |
 * | greeting, EHLO, HELO, STARTTLS, AUTH| anything else, timeout    | host        | defer  | yes       | yes       | timeout only      |
 * | MAIL FROM, RCPT, DATA, BDAT, eod, RSET | 421, no reply, not 2-5xx| session   | defer  | yes       | no        | MAIL: too-many/timeout |
 * | MAIL FROM                          | 4xx too-many / 4.7.0/4.7.28| session     | defer  | yes       | no        | yes               |
 * | MAIL FROM, DATA, BDAT, eod         | other 4xx                  | transaction | defer  | no        | no        | no                |
 * | MAIL FROM, DATA, BDAT, eod         | 5xx                        | transaction | bounce | no        | no        | no                |
 * | RCPT TO                            | 4xx/5xx                    | recipient   | (rcpt-table)                                 |
 */
export function judgeTrouble(stage: TroubleStage, reply: Pick<LastReply, 'code' | 'enhanced' | 'text'>): TroubleDecision {
  const { code } = reply;
  const timeout = isTimeout(reply);
  if (stage === 'resolve') {
    return code >= 500 ? d('resolve', 'bounce', false, false, false, 'resolve 5xx') : d('resolve', 'defer', true, false, false, 'resolve 4xx');
  }
  if (HOST_STAGES.has(stage)) {
    if (stage === 'connect') return d('host', 'defer', true, true, timeout, timeout ? 'connect timeout' : 'connect failed');
    const throttle = timeout || (SESSION_STAGES.has(stage) && asksToThrottle(reply));
    return d('host', 'defer', true, true, throttle, throttle && !timeout ? `${stage} too many connections` : `${stage} failed`);
  }
  // In a session: a closing server or a broken one ends it (spec: "421 (at any point)", "no reply").
  const lost = timeout || (code === 451 && reply.enhanced === '4.4.2');
  if (code === 421 || lost || code < 200 || code >= 600) {
    const throttle = stage === 'MAIL FROM' && (timeout || asksToThrottle(reply));
    return d('session', 'defer', true, false, throttle, code === 421 ? `${stage} 421` : `${stage} no reply`);
  }
  if (stage === 'RCPT TO') return d('recipient', code >= 500 ? 'bounce' : 'defer', false, false, false, 'RCPT (rcpt-table)');
  // "Too many connections" at MAIL FROM says the same as at the greeting, one step later: this
  // connection is one too many, so the session ends here and the scheduler weighs the throttle
  // (others working → fewer connections; alone → the destination's backoff), as for a greeting.
  if (stage === 'MAIL FROM' && code >= 400 && code < 500 && asksToThrottle(reply)) {
    return d('session', 'defer', true, false, true, 'MAIL FROM too many');
  }
  if (code >= 400 && code < 500) return d('transaction', 'defer', false, false, false, `${stage} 4xx`);
  if (code >= 500) return d('transaction', 'bounce', false, false, false, `${stage} 5xx`);
  // 2xx/3xx is no trouble at all; a caller asking is a bug, answered safely.
  return d('transaction', 'defer', false, false, false, `${stage} not a failure`);
}

/** The stage a LastReply's `command` names (connection.ts and send.ts write these). */
export function stageOf(command: string | undefined): TroubleStage {
  switch (command) {
    case 'resolve': case 'connect': case 'greeting': case 'EHLO': case 'HELO': case 'STARTTLS': case 'AUTH':
    case 'MAIL FROM': case 'RCPT TO': case 'DATA': case 'BDAT': case 'end of DATA': case 'RSET':
      return command;
    default:
      // Unknown stage: treat as in-session (the conservative row: defer, charge the destination).
      return 'DATA';
  }
}

/** Shortcut: judge a LastReply by the command it carries. */
export const judgeReply = (r: LastReply): TroubleDecision => judgeTrouble(stageOf(r.command), r);

/**
 * inbound/states — the session's states and which command is allowed in
 * which (RFC 5321 §4.1.4 order of commands), as one table.
 *
 * Pure. The session asks `sequenceCheck` before acting on a command; a
 * refusal here is always `503 5.5.1` with the reason.
 */

export type SessionState =
  | 'fresh'      // connected, greeted, no EHLO/HELO yet
  | 'greeted'    // after EHLO/HELO, no transaction
  | 'mail'       // after MAIL, no recipient accepted
  | 'rcpt'       // at least one recipient accepted
  | 'bdat';      // at least one BDAT chunk received (only BDAT/RSET/QUIT/NOOP go on)

type Verb = 'EHLO' | 'HELO' | 'MAIL' | 'RCPT' | 'DATA' | 'BDAT' | 'RSET' | 'NOOP' | 'QUIT' | 'VRFY' | 'EXPN' | 'HELP' | 'STARTTLS' | 'AUTH';

/** For each verb: the states it is allowed in, and the reason given otherwise. */
const TABLE: Record<Verb, { readonly in: readonly SessionState[]; readonly otherwise: string }> = {
  EHLO: { in: ['fresh', 'greeted', 'mail', 'rcpt'], otherwise: 'EHLO not allowed during BDAT' },
  HELO: { in: ['fresh', 'greeted', 'mail', 'rcpt'], otherwise: 'HELO not allowed during BDAT' },
  MAIL: { in: ['greeted'], otherwise: 'MAIL needs EHLO/HELO first, and no transaction in progress' },
  RCPT: { in: ['mail', 'rcpt'], otherwise: 'RCPT needs MAIL first' },
  DATA: { in: ['rcpt'], otherwise: 'DATA needs a valid RCPT first' },
  BDAT: { in: ['rcpt', 'bdat'], otherwise: 'BDAT needs a valid RCPT first' },
  RSET: { in: ['fresh', 'greeted', 'mail', 'rcpt', 'bdat'], otherwise: '' },
  NOOP: { in: ['fresh', 'greeted', 'mail', 'rcpt', 'bdat'], otherwise: '' },
  QUIT: { in: ['fresh', 'greeted', 'mail', 'rcpt', 'bdat'], otherwise: '' },
  VRFY: { in: ['fresh', 'greeted', 'mail', 'rcpt'], otherwise: 'VRFY not allowed during BDAT' },
  EXPN: { in: ['fresh', 'greeted', 'mail', 'rcpt'], otherwise: 'EXPN not allowed during BDAT' },
  HELP: { in: ['fresh', 'greeted', 'mail', 'rcpt'], otherwise: 'HELP not allowed during BDAT' },
  STARTTLS: { in: ['greeted'], otherwise: 'STARTTLS needs EHLO first, and no transaction in progress' },
  AUTH: { in: ['greeted'], otherwise: 'AUTH needs EHLO first, and no transaction in progress' },
};

/** undefined when allowed, else the 503 reason. */
export function sequenceCheck(state: SessionState, verb: Verb): string | undefined {
  const row = TABLE[verb];
  return row.in.includes(state) ? undefined : row.otherwise;
}

/** DATA after MAIL whose recipients were all refused: 554 "no valid recipients" (RFC 5321 §3.3), not 503. */
export function dataWithoutRecipients(state: SessionState, rcptTried: number): boolean {
  return state === 'mail' && rcptTried > 0;
}

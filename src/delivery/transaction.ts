/**
 * delivery/transaction — one outbound SMTP transaction (MAIL FROM, RCPT TO…,
 * DATA or BDAT, end of data) as a pure reducer over the remote's replies.
 * It implements spec/outbound-replies.md; the per-reply tables are in
 * `rcpt-table.ts`. No sockets, no clock, no storage: the I/O shell writes the
 * commands, reads the replies and feeds them here, strictly in order.
 *
 * Driving loop (the shell; `read()` yields a Reply or undefined on timeout/reset):
 * ```ts
 * let s = startTransaction(ids, policy);  write(MAIL FROM)
 * for (let step = 0; step < 4 * ids.length + 8; step++) {        // bounded
 *   if (pipelining) { const r = sendRcpts(s, Infinity); s = r.state; write(RCPT TO for r.ids) }
 *   const a = nextAction(s);
 *   if (a.kind === 'send-rcpt') { const r = sendRcpts(s, 1); s = r.state; write(RCPT TO for r.ids) }
 *   else if (a.kind === 'read') { const r = await read(); s = r ? onReply(s, r) : onNoReply(s, 'timeout') }
 *   else if (a.kind === 'send-data') { s = sendData(s); write('DATA') }
 *   else if (a.kind === 'send-content') { write(body + '.'); const r = await read(); s = onEndOfData(s, r) }
 *   else break;   // 'done' (RSET first if a.rsetFirst) or 'close' (drop the connection)
 * }
 * const { perRecipient, limitDeferred } = outcomes(s); // record delivered durably BEFORE reusing the connection
 * ```
 * `limitDeferred` go into the next transaction at once (same connection after
 * 'done'); they never include a recipient that was accepted or answered.
 *
 * LMTP mode (RFC 2033, `startTransaction(ids, policy, 'lmtp')`): the same
 * reducer, except that end of data (the dot or the last BDAT) is answered once
 * per accepted recipient, in RCPT order. The first of those replies goes to
 * `onEndOfData` like in SMTP; `nextAction` then asks to `read` the rest
 * ('end of DATA'), which `onReply` applies, each to its own recipient alone
 * (spec: "each is applied to its own recipient by the same table"). A reply
 * that is lost part-way defers only the recipients still waiting, marked
 * possible duplicates.
 */

import type { Reply } from '../smtp/reply.js';
import { judgeTrouble } from './failure-policy.js';
import {
  classifyAfterRcpt,
  classifyRcptReply,
  DEFAULT_MAILBOX_POLICY,
  enhancedOf,
  type Command,
  type MailboxPolicy,
} from './rcpt-table.js';

export type { Command, MailboxPolicy, RcptVerdict } from './rcpt-table.js';
export { classifyRcptReply, classifyAfterRcpt, DEFAULT_MAILBOX_POLICY } from './rcpt-table.js';

/** A recipient's result for this transaction. */
export interface FinalVerdict {
  readonly kind: 'delivered' | 'failed' | 'deferred';
  /** The reply that decided it; unset when no reply came (`lost` says why). */
  readonly reply?: Reply;
  readonly lost?: string;
  /** The command that reply answered (or that was waiting when the connection was lost). */
  readonly command: Command;
  /** Decided by a failure of the connection (421, timeout, reset): the destination's backoff governs. */
  readonly connectionLevel: boolean;
  /** The end of data may have been taken by the server although we saw no reply (RFC 1047). */
  readonly possibleDuplicate: boolean;
}

type Slot =
  | { readonly s: 'unsent' }
  | { readonly s: 'sent' }
  | { readonly s: 'accepted'; readonly reply: Reply }
  | { readonly s: 'limit-deferred'; readonly reply: Reply }
  | { readonly s: 'final'; readonly v: FinalVerdict };

export type Phase = 'mail' | 'rcpt' | 'data' | 'content' | 'settled';

/** 'lmtp': one end-of-data reply per accepted recipient (RFC 2033 §4.2). */
export type TxMode = 'smtp' | 'lmtp';

export interface TxState {
  readonly recipients: readonly number[];
  readonly policy: MailboxPolicy;
  readonly mode: TxMode;
  readonly phase: Phase;
  readonly mailAnswered: boolean;
  /** RCPT TO commands written; replies match `slots[0..sent)` in order. */
  readonly sent: number;
  readonly answered: number;
  /** A: recipients accepted so far. */
  readonly accepted: number;
  /** No more RCPT TO may be issued (recipient limit reached). */
  readonly stopped: boolean;
  readonly content: 'DATA' | 'BDAT';
  /** LMTP: how many per-recipient end-of-data replies were applied. */
  readonly lmtpApplied: number;
  readonly endOfDataAnswered: boolean;
  readonly slots: readonly Slot[];
  readonly connectionFailure?: { readonly reply?: Reply; readonly lost?: string; readonly command: Command };
  readonly possibleDuplicate: boolean;
  /** The recipient-limit reply (rule 3) and A when it came: what the destination's learned limit is made of (I6). */
  readonly limitReached?: { readonly accepted: number; readonly reply: Reply };
}

export type TxErrorCode = 'TX_EMPTY_BATCH' | 'TX_DUPLICATE_RECIPIENT' | 'TX_NO_OUTSTANDING_COMMAND' | 'TX_WRONG_PHASE' | 'TX_NOT_SETTLED';

/** Misuse of the reducer by its caller (a reply with no command waiting for it, …): a bug, never a remote's doing. */
export class TransactionError extends Error {
  constructor(readonly code: TxErrorCode, detail: string) {
    super(`${code}: ${detail}`);
    this.name = 'TransactionError';
  }
}

export function startTransaction(recipientIds: readonly number[], policy: MailboxPolicy = DEFAULT_MAILBOX_POLICY, mode: TxMode = 'smtp'): TxState {
  if (recipientIds.length === 0) throw new TransactionError('TX_EMPTY_BATCH', 'a transaction needs at least one recipient');
  if (new Set(recipientIds).size !== recipientIds.length) throw new TransactionError('TX_DUPLICATE_RECIPIENT', 'recipient ids must be distinct');
  return {
    recipients: [...recipientIds],
    policy,
    mode,
    phase: 'mail',
    mailAnswered: false,
    sent: 0,
    answered: 0,
    accepted: 0,
    stopped: false,
    content: 'DATA',
    lmtpApplied: 0,
    endOfDataAnswered: false,
    slots: recipientIds.map(() => ({ s: 'unsent' }) as const),
    possibleDuplicate: false,
  };
}

const final = (kind: FinalVerdict['kind'], command: Command, reply: Reply | undefined, extra: Partial<FinalVerdict> = {}): Slot => ({
  s: 'final',
  v: { kind, command, connectionLevel: false, possibleDuplicate: false, ...(reply ? { reply } : {}), ...extra },
});

function expect(s: TxState, ok: boolean, what: string): void {
  if (s.connectionFailure) throw new TransactionError('TX_NO_OUTSTANDING_COMMAND', `${what}: the connection already failed`);
  if (!ok) throw new TransactionError('TX_WRONG_PHASE', `${what} in phase ${s.phase}`);
}

/**
 * The connection is over (421, broken peer, timeout, reset). Every recipient
 * without a verdict of its own — accepted, sent, unsent, limit-deferred — is
 * deferred; the destination records the failure.
 */
function failConnection(s: TxState, command: Command, reply: Reply | undefined, lost: string | undefined, dup: boolean): TxState {
  const slots = s.slots.map((sl) =>
    sl.s === 'final' ? sl : final('deferred', command, reply, { connectionLevel: true, possibleDuplicate: dup && sl.s === 'accepted', ...(lost ? { lost } : {}) }),
  );
  return { ...s, phase: 'settled', slots, connectionFailure: { command, ...(reply ? { reply } : {}), ...(lost ? { lost } : {}) }, possibleDuplicate: s.possibleDuplicate || dup };
}

/** Gives every accepted recipient the same result (DATA refused, end of data answered). */
function settleAccepted(s: TxState, slot: (r: Reply) => Slot): TxState {
  return { ...s, phase: 'settled', slots: s.slots.map((sl) => (sl.s === 'accepted' ? slot(sl.reply) : sl)) };
}

/** RCPT TO may be written for these recipients now (none once the limit is reached). Call with max 1 without PIPELINING. */
export function sendRcpts(s: TxState, max: number): { state: TxState; ids: number[] } {
  if (s.phase !== 'mail' && s.phase !== 'rcpt') return { state: s, ids: [] };
  if (s.stopped || s.connectionFailure || !(max >= 1)) return { state: s, ids: [] };
  const end = Math.min(s.recipients.length, s.sent + Math.floor(Math.min(max, s.recipients.length)));
  if (end <= s.sent) return { state: s, ids: [] };
  const slots = s.slots.map((sl, i) => (i >= s.sent && i < end ? ({ s: 'sent' } as const) : sl));
  return { state: { ...s, sent: end, slots }, ids: s.recipients.slice(s.sent, end) };
}

/** RCPT TO written whose reply has not been read yet (to cap a pipelining window). */
export const outstandingRcpts = (s: TxState): number => s.sent - s.answered;

export function onMailReply(s: TxState, reply: Reply): TxState {
  expect(s, s.phase === 'mail' && !s.mailAnswered, 'MAIL FROM reply');
  const e = classifyAfterRcpt('MAIL FROM', reply);
  if (e.kind === 'proceed') return settleIfRcptDone({ ...s, phase: 'rcpt', mailAnswered: true });
  // The failure policy also ends the session on a "too many connections" 4xx (its MAIL FROM row).
  const sessionOver = e.kind === 'deferred' && (e.connectionLevel ||
    judgeTrouble('MAIL FROM', { code: reply.code, ...(reply.enhanced ? { enhanced: reply.enhanced } : {}), text: reply.lines.join(' ') }).scope === 'session');
  if (sessionOver) return failConnection({ ...s, mailAnswered: true }, 'MAIL FROM', reply, undefined, false);
  // Pipelined RCPT replies may still arrive; they are read and ignored (see onRcptReply).
  const kind = e.kind === 'failed' ? 'failed' : 'deferred';
  return { ...s, mailAnswered: true, phase: 'settled', slots: s.slots.map(() => final(kind, 'MAIL FROM', reply)) };
}

/** A reply to the oldest unanswered RCPT TO. */
export function onRcptReply(s: TxState, reply: Reply): TxState {
  expect(s, s.mailAnswered, 'RCPT TO reply before the MAIL FROM reply');
  if (s.answered >= s.sent) throw new TransactionError('TX_NO_OUTSTANDING_COMMAND', 'RCPT TO reply with no RCPT TO outstanding');
  const i = s.answered;
  // MAIL FROM was refused but RCPTs were pipelined: their replies mean nothing now.
  if (s.phase === 'settled') return { ...s, answered: i + 1 };

  const d = classifyRcptReply(reply, s.accepted, s.policy);
  const v = d.verdict;
  let slot: Slot;
  // Connection-level: left open here so failConnection gives it the connection-level verdict like the rest.
  if (d.connectionLevel) slot = { s: 'sent' };
  else if (v.kind === 'accepted') slot = { s: 'accepted', reply };
  else if (v.kind === 'limit-deferred') slot = { s: 'limit-deferred', reply };
  else slot = final(v.kind, 'RCPT TO', reply);
  let next: TxState = {
    ...s,
    answered: i + 1,
    accepted: s.accepted + (v.kind === 'accepted' ? 1 : 0),
    slots: s.slots.map((sl, k) => (k === i ? slot : sl)),
  };
  if (d.connectionLevel) return failConnection(next, 'RCPT TO', reply, undefined, false);
  if (d.stopRcpt && !next.stopped) {
    // Rule 3: those not yet sent go into the next transaction; those already sent get their own replies.
    next = { ...next, stopped: true, limitReached: { accepted: s.accepted, reply }, slots: next.slots.map((sl) => (sl.s === 'unsent' ? { s: 'limit-deferred', reply } : sl)) };
  }
  return settleIfRcptDone(next);
}

/** All RCPT replies in and none accepted: no DATA (spec: "no recipient accepted → RSET"). */
function settleIfRcptDone(s: TxState): TxState {
  const done = s.answered === s.sent && (s.stopped || s.sent === s.recipients.length);
  return done && s.accepted === 0 ? { ...s, phase: 'settled' } : s;
}

/** True when DATA (or the first BDAT) may be sent: every RCPT answered, A ≥ 1, no 421. */
export function shouldSendData(s: TxState): boolean {
  return (
    s.phase === 'rcpt' &&
    !s.connectionFailure &&
    s.accepted >= 1 &&
    s.answered === s.sent &&
    (s.stopped || s.sent === s.recipients.length)
  );
}

export function sendData(s: TxState): TxState {
  expect(s, shouldSendData(s), 'DATA');
  return { ...s, phase: 'data', content: 'DATA' };
}

export function onDataReply(s: TxState, reply: Reply): TxState {
  expect(s, s.phase === 'data', 'DATA reply');
  return afterRcpt(s, 'DATA', reply);
}

/** CHUNKING: the first BDAT goes out instead of DATA (there is no 354). */
export function beginChunks(s: TxState): TxState {
  expect(s, shouldSendData(s), 'BDAT');
  return { ...s, phase: 'content', content: 'BDAT' };
}

/** The reply to a BDAT chunk that is not the last (the last one's goes to onEndOfData). */
export function onChunkReply(s: TxState, reply: Reply): TxState {
  expect(s, s.phase === 'content' && s.content === 'BDAT', 'BDAT reply');
  return afterRcpt(s, 'BDAT', reply);
}

/**
 * The reply to end of data (`.` or the last BDAT); undefined = timeout/reset after the data was sent.
 * In LMTP mode this is the first of the per-recipient replies (see onLmtpReply).
 */
export function onEndOfData(s: TxState, reply: Reply | undefined): TxState {
  expect(s, s.phase === 'content', 'end of data reply');
  if (s.mode === 'lmtp') return onLmtpReply(s, reply);
  if (!reply) return failConnection(s, 'end of DATA', undefined, 'no reply to end of data', true);
  return { ...afterRcpt(s, 'end of DATA', reply), endOfDataAnswered: true };
}

/**
 * LMTP (RFC 2033 §4.2): one end-of-data reply per accepted recipient, in RCPT
 * order, each applied to the oldest accepted recipient still waiting, by the
 * spec's second table (2xx delivered, 4xx deferred, 5xx failed). A `5.2.2`
 * (mailbox full) follows `delivery.mailbox_full` as it does at RCPT: it is the
 * same per-mailbox answer, given later. undefined = no reply came: the
 * recipients still waiting are deferred and marked possible duplicates (the
 * server had the whole message); the ones already answered keep their verdicts.
 */
export function onLmtpReply(s: TxState, reply: Reply | undefined): TxState {
  expect(s, s.phase === 'content' && s.mode === 'lmtp', 'LMTP reply');
  if (!reply) return failConnection(s, 'end of DATA', undefined, 'no reply to end of data', true);
  const i = s.slots.findIndex((sl) => sl.s === 'accepted');
  if (i < 0) throw new TransactionError('TX_NO_OUTSTANDING_COMMAND', 'LMTP reply with no accepted recipient waiting');
  const e = classifyAfterRcpt('end of DATA', reply);
  const mailboxFull = enhancedOf(reply);
  const transientFull = e.kind === 'failed' && s.policy.mailboxFull === 'transient' && mailboxFull?.subject === 2 && mailboxFull.detail === 2;
  const slot: Slot =
    e.kind === 'delivered' || e.kind === 'proceed'
      ? final('delivered', 'end of DATA', reply)
      : transientFull
        ? final('deferred', 'end of DATA', reply)
        : final(e.kind, 'end of DATA', reply, e.kind === 'deferred' ? { connectionLevel: e.connectionLevel, possibleDuplicate: e.possibleDuplicate } : {});
  let next: TxState = { ...s, lmtpApplied: s.lmtpApplied + 1, slots: s.slots.map((sl, k) => (k === i ? slot : sl)) };
  // A 421 or garbage for one recipient: the rest of the replies will never come.
  if (e.kind === 'deferred' && e.connectionLevel) return failConnection(next, 'end of DATA', reply, undefined, true);
  if (!next.slots.some((sl) => sl.s === 'accepted')) next = { ...next, phase: 'settled', endOfDataAnswered: true };
  return next;
}

function afterRcpt(s: TxState, command: 'DATA' | 'BDAT' | 'end of DATA', reply: Reply): TxState {
  const e = classifyAfterRcpt(command, reply);
  switch (e.kind) {
    case 'proceed':
      return command === 'DATA' ? { ...s, phase: 'content' } : s;
    case 'delivered':
      return settleAccepted(s, () => final('delivered', command, reply));
    case 'failed':
      return settleAccepted(s, () => final('failed', command, reply));
    case 'deferred':
      if (e.connectionLevel) return failConnection(s, command, reply, undefined, e.possibleDuplicate);
      return settleAccepted(s, () => final('deferred', command, reply));
  }
}

/**
 * No reply came (timeout, reset) to whatever was outstanding. Every recipient
 * without its own verdict is deferred and the destination records a failure.
 * Losing the connection while the content is still being written is not a
 * possible duplicate (the server cannot have seen the final dot); use
 * onEndOfData(s, undefined) once the dot or last BDAT was written.
 * A no-op once the transaction is settled: settled verdicts never change.
 */
export function onNoReply(s: TxState, why = 'connection lost'): TxState {
  if (s.phase === 'settled') return s;
  // LMTP, some per-recipient replies read: end of data was sent, the rest may have been delivered.
  if (s.mode === 'lmtp' && s.lmtpApplied > 0) return failConnection(s, 'end of DATA', undefined, why, true);
  const command: Command = s.phase === 'mail' ? 'MAIL FROM' : s.phase === 'rcpt' ? 'RCPT TO' : s.content === 'BDAT' ? 'BDAT' : 'DATA';
  return failConnection(s, command, undefined, why, false);
}

/** The command whose reply comes next, if one is outstanding. */
export function awaiting(s: TxState): Command | undefined {
  if (s.connectionFailure) return undefined;
  if (!s.mailAnswered) return 'MAIL FROM';
  if (s.answered < s.sent) return 'RCPT TO';
  if (s.phase === 'data') return 'DATA';
  if (s.phase === 'content' && s.mode === 'lmtp' && s.lmtpApplied > 0) return 'end of DATA';
  return undefined;
}

/** Feeds the next reply in order to the command it answers (MAIL, RCPT, DATA, end of DATA, LMTP's further end-of-data replies; not BDAT chunks). */
export function onReply(s: TxState, reply: Reply): TxState {
  const a = awaiting(s);
  if (a === 'MAIL FROM') return onMailReply(s, reply);
  if (a === 'RCPT TO') return onRcptReply(s, reply);
  if (a === 'DATA') return onDataReply(s, reply);
  if (a === 'end of DATA') return onLmtpReply(s, reply);
  if (s.phase === 'content' && s.content === 'DATA' && !s.connectionFailure) return onEndOfData(s, reply);
  throw new TransactionError('TX_NO_OUTSTANDING_COMMAND', `a ${reply.code} reply with no command outstanding (phase ${s.phase})`);
}

export type NextAction =
  | { readonly kind: 'read'; readonly command: Command }
  | { readonly kind: 'send-rcpt' }
  | { readonly kind: 'send-data' }
  /** DATA: write the content and the dot, then onEndOfData/onLmtpReply. BDAT: write chunks (onChunkReply), the last to onEndOfData. */
  | { readonly kind: 'send-content'; readonly via: 'DATA' | 'BDAT' }
  /** Transaction over, connection usable: send RSET first unless end of data was answered. */
  | { readonly kind: 'done'; readonly rsetFirst: boolean }
  /** Connection-level failure: drop the connection. */
  | { readonly kind: 'close' };

export function nextAction(s: TxState): NextAction {
  if (s.connectionFailure) return { kind: 'close' };
  const a = awaiting(s);
  if (a) return { kind: 'read', command: a };
  switch (s.phase) {
    case 'settled':
      return { kind: 'done', rsetFirst: !s.endOfDataAnswered };
    case 'rcpt':
      return shouldSendData(s) ? { kind: 'send-data' } : { kind: 'send-rcpt' };
    case 'content':
      return { kind: 'send-content', via: s.content };
    case 'mail':
    case 'data':
      // Unreachable: awaiting() covers both while no connection failure is recorded.
      throw new TransactionError('TX_WRONG_PHASE', `no action in phase ${s.phase}`);
  }
}

export interface TxOutcomes {
  readonly perRecipient: ReadonlyMap<number, FinalVerdict>;
  /** Into the next transaction at once (no failure counted), in batch order. */
  readonly limitDeferred: readonly number[];
  readonly connectionFailure?: TxState['connectionFailure'];
  readonly possibleDuplicate: boolean;
  readonly limitReached?: TxState['limitReached'];
}

/** The result of a settled transaction: each recipient has exactly one verdict or is limit-deferred. */
export function outcomes(s: TxState): TxOutcomes {
  if (s.phase !== 'settled') throw new TransactionError('TX_NOT_SETTLED', `outcomes asked in phase ${s.phase}`);
  const perRecipient = new Map<number, FinalVerdict>();
  const limitDeferred: number[] = [];
  s.slots.forEach((sl, i) => {
    const id = s.recipients[i]!;
    if (sl.s === 'final') perRecipient.set(id, sl.v);
    else if (sl.s === 'limit-deferred') limitDeferred.push(id);
    // Unreachable by construction (every path to 'settled' resolves the others); kept loud.
    else throw new TransactionError('TX_NOT_SETTLED', `recipient ${id} left ${sl.s}`);
  });
  return {
    perRecipient, limitDeferred, possibleDuplicate: s.possibleDuplicate,
    ...(s.connectionFailure ? { connectionFailure: s.connectionFailure } : {}),
    ...(s.limitReached ? { limitReached: s.limitReached } : {}),
  };
}

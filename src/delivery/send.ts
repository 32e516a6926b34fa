/**
 * delivery/send — runs ONE SMTP or LMTP transaction for one message and a
 * batch of its recipients on an open connection, by driving the pure reducer
 * of `transaction.ts` (spec/outbound-replies.md) with real replies. On an
 * LMTP connection the reducer runs in its LMTP mode: after end of data it
 * asks for one more reply per accepted recipient, read here like any other.
 *
 * What it writes:
 * - `MAIL FROM:<sender>` with SIZE= (when offered), BODY=8BITMIME (8-bit
 *   content and 8BITMIME offered), SMTPUTF8 (when the message needs it),
 *   RET= and ENVID= (when DSN is offered);
 * - `RCPT TO:<addr>` with NOTIFY= and ORCPT= (xtext) when DSN is offered;
 * - with PIPELINING, MAIL and every RCPT in one write (RFC 2920); DATA only
 *   after every RCPT reply, never pipelined;
 * - the content through `dotStuff` (so no bare CR or LF ever leaves) after
 *   DATA; or, when the server offers CHUNKING (RFC 3030), as `BDAT n` chunks
 *   of the stored bytes exactly (no dot-stuffing: binary-clean), the last
 *   one `BDAT n LAST`. Each chunk's reply is read before the next chunk is
 *   written (chunks are not pipelined); a chunk refused ends the transaction
 *   like a refused DATA (spec, second table), the last chunk's reply is the
 *   end of data (one per recipient over LMTP).
 *
 * Checks before sending anything (no MAIL FROM is written):
 * - message larger than the server's SIZE → every recipient failed 552 5.3.4;
 * - message needs SMTPUTF8 and the server lacks it → failed 550 5.6.7;
 * - a MAIL FROM line that would not parse back to the stored sender and its
 *   parameters (wire-check.ts) → every recipient failed 553 5.1.7; a RCPT TO
 *   line that would not → that recipient failed 553 5.1.3, the others go on.
 * 8-bit content to a server without 8BITMIME is sent as is, without BODY=
 * (RFC 6152 would have us convert or bounce; like Postfix's default we send,
 * since nearly every such server passes 8-bit octets through unharmed).
 *
 * It does not record anything, pick hosts or reuse connections: it returns
 * the verdicts, the limit-deferred recipients and, when the connection failed,
 * the reply the destination's backoff is charged with (smtp-transport.ts).
 */
import type { Logger } from 'pino';
import type { LastReply, MessageRow, Notify, RecipientRow } from '../queue/model.js';
import { dotStuffParts, has8bit } from '../smtp/dotstuff.js';
import { encodeXtext } from '../smtp/params.js';
import { ERRORS } from '../errors.js';
import type { Command } from './rcpt-table.js';
import { wireMismatch } from './wire-check.js';
import { isLost, lostReply, toLastReply, type Capabilities, type Lost, type SmtpConnection } from './connection.js';
import {
  beginChunks,
  nextAction,
  onChunkReply,
  onEndOfData,
  onNoReply,
  onReply,
  outcomes,
  sendData,
  sendRcpts,
  startTransaction,
  type FinalVerdict,
  type MailboxPolicy,
  type TxState,
} from './transaction.js';
import type { RecipientVerdict } from './types.js';

export interface TxInput {
  readonly message: MessageRow;
  readonly body: Buffer;
  /** At most delivery.max_recipients_per_transaction, distinct ids. */
  readonly recipients: readonly RecipientRow[];
  readonly policy: MailboxPolicy;
  readonly log: Logger;
  /** BDAT chunk size in bytes (default CHUNK_SIZE); tests set it small to see several chunks. */
  readonly chunkSize?: number;
}

/** Bodies from this size go out as a gathered write of views rather than one joined copy. */
const GATHER_MIN_BYTES = 16 * 1024;

/** 1 MiB per BDAT chunk: few round trips, bounded memory per write. */
export const CHUNK_SIZE = 1024 * 1024;

export interface TxReport {
  /** One verdict per recipient that got one (all but the limit-deferred). */
  readonly verdicts: ReadonlyMap<number, RecipientVerdict>;
  /** Into the next transaction at once; never a recipient that was accepted or answered. */
  readonly limitDeferred: readonly number[];
  /** The connection failed (421, timeout, reset): the destination is charged with this. */
  readonly connectionFailure?: LastReply;
  /** False when a pre-check failed the batch without writing MAIL FROM. */
  readonly mailSent: boolean;
  /** The server's recipient limit was reached after `accepted` recipients (spec rule 3), with its reply. */
  readonly limitReached?: { readonly accepted: number; readonly reply: LastReply };
}

const ASCII = /^[\x00-\x7f]*$/;

export function needsSmtputf8(message: MessageRow, recipients: readonly RecipientRow[]): boolean {
  return message.params.smtputf8 || !ASCII.test(message.sender) || recipients.some((r) => !ASCII.test(r.address));
}

export function is8bit(message: MessageRow, body: Buffer): boolean {
  return message.params.body === '8BITMIME' || message.params.body === 'BINARYMIME' || has8bit(body);
}

/** A reason to fail every recipient without sending MAIL FROM, or undefined. */
export function precheck(caps: Capabilities, message: MessageRow, body: Buffer, recipients: readonly RecipientRow[], host: string): LastReply | undefined {
  if (caps.size !== undefined && caps.size > 0 && body.length > caps.size) {
    return { code: 552, enhanced: '5.3.4', text: `Message size ${body.length} exceeds the server's limit of ${caps.size} bytes`, host, command: 'EHLO' };
  }
  if (needsSmtputf8(message, recipients) && !caps.smtputf8) {
    return { code: 550, enhanced: '5.6.7', text: 'Message needs SMTPUTF8 but the server does not offer it', host, command: 'EHLO' };
  }
  return undefined;
}

export function mailFromParams(message: MessageRow, body: Buffer, recipients: readonly RecipientRow[], caps: Capabilities): string[] {
  const p: string[] = [];
  if (caps.size !== undefined) p.push(`SIZE=${body.length}`);
  if (caps.eightBitMime && is8bit(message, body)) p.push('BODY=8BITMIME');
  if (caps.smtputf8 && needsSmtputf8(message, recipients)) p.push('SMTPUTF8');
  if (caps.dsn && message.params.ret) p.push(`RET=${message.params.ret}`);
  if (caps.dsn && message.params.envid !== undefined) p.push(`ENVID=${encodeXtext(message.params.envid)}`);
  return p;
}

export function mailFromLine(message: MessageRow, body: Buffer, recipients: readonly RecipientRow[], caps: Capabilities): string {
  return `MAIL FROM:<${message.sender}>${mailFromParams(message, body, recipients, caps).map((x) => ` ${x}`).join('')}\r\n`;
}

const notifyParam = (n: Notify): string => (n === 'NEVER' ? 'NEVER' : n.join(','));

/** "rfc822;user@example.test" → "rfc822;" + xtext(address) (RFC 3461 §4.2). */
function orcptParam(orcpt: string): string {
  const semi = orcpt.indexOf(';');
  return semi < 0 ? `rfc822;${encodeXtext(orcpt)}` : `${orcpt.slice(0, semi)};${encodeXtext(orcpt.slice(semi + 1))}`;
}

export function rcptToParams(r: RecipientRow, caps: Capabilities): string[] {
  const p: string[] = [];
  if (caps.dsn && r.notify !== undefined) p.push(`NOTIFY=${notifyParam(r.notify)}`);
  if (caps.dsn && r.orcpt !== undefined) p.push(`ORCPT=${orcptParam(r.orcpt)}`);
  return p;
}

export function rcptToLine(r: RecipientRow, caps: Capabilities): string {
  return `RCPT TO:<${r.address}>${rcptToParams(r, caps).map((x) => ` ${x}`).join('')}\r\n`;
}

/**
 * The recipients whose RCPT TO line would not parse back to their stored
 * address and parameters (wire-check.ts), each with its permanent failure;
 * or, when the MAIL FROM line itself would not, every recipient failed.
 */
export function unsendable(message: MessageRow, body: Buffer, recipients: readonly RecipientRow[], caps: Capabilities, host: string): Map<number, LastReply> {
  const out = new Map<number, LastReply>();
  const mailWhy = wireMismatch('MAIL', mailFromLine(message, body, recipients, caps), message.sender, mailFromParams(message, body, recipients, caps));
  if (mailWhy) {
    const e = ERRORS.HAL_ERR_SENDER_UNSENDABLE;
    for (const r of recipients) out.set(r.id, { code: e.smtp, enhanced: e.enhanced, text: `${e.text} (${mailWhy})`, host, command: 'MAIL FROM' });
    return out;
  }
  const e = ERRORS.HAL_ERR_RCPT_UNSENDABLE;
  for (const r of recipients) {
    const why = wireMismatch('RCPT', rcptToLine(r, caps), r.address, rcptToParams(r, caps));
    if (why) out.set(r.id, { code: e.smtp, enhanced: e.enhanced, text: `${e.text} (${why})`, host, command: 'RCPT TO' });
  }
  return out;
}

function timeoutFor(conn: SmtpConnection, command: Command): number {
  switch (command) {
    case 'DATA': return conn.timeouts.dataInit;
    case 'end of DATA':
    case 'BDAT': return conn.timeouts.dataDone;
    case 'MAIL FROM':
    case 'RCPT TO': return conn.timeouts.command;
  }
}

/**
 * Runs one transaction. The connection's state afterwards: 'ready' (end of
 * data answered), 'needs-rset' (ended without DATA) or 'closed'.
 */
export async function runTransaction(conn: SmtpConnection, input: TxInput): Promise<TxReport> {
  const { message, body } = input;
  const refused = precheck(conn.caps, message, body, input.recipients, conn.label);
  if (refused) {
    return { verdicts: new Map(input.recipients.map((r) => [r.id, { kind: 'failed', reply: refused }])), limitDeferred: [], mailSent: false };
  }
  // A line that would not parse back to its envelope is never written: those recipients fail here, the rest go on.
  const unfit = unsendable(message, body, input.recipients, conn.caps, conn.label);
  const verdicts = new Map<number, RecipientVerdict>([...unfit].map(([id, reply]) => [id, { kind: 'failed', reply }]));
  if (unfit.size > 0) input.log.warn({ host: conn.label, messageId: message.id, refused: [...unfit.values()].map((r) => r.text) }, 'not sent: command line would not parse back to the envelope');
  const recipients = input.recipients.filter((r) => !unfit.has(r.id));
  if (recipients.length === 0) return { verdicts, limitDeferred: [], mailSent: false };
  const byId = new Map(recipients.map((r) => [r.id, r]));

  const rcptLines = (ids: readonly number[]): string => ids.map((id) => rcptToLine(byId.get(id)!, conn.caps)).join('');
  // The reply, if any, that ended the connection without a server reply (the reducer keeps only its text).
  let lost: Lost | undefined;
  const noReply = (s: TxState, l: Lost): TxState => {
    lost = l;
    return onNoReply(s, l.detail);
  };

  let s = startTransaction(recipients.map((r) => r.id), input.policy, conn.lmtp ? 'lmtp' : 'smtp');
  const first = conn.caps.pipelining ? sendRcpts(s, Infinity) : { state: s, ids: [] };
  s = first.state;
  conn.transactions++;
  const opening = await conn.write(mailFromLine(message, body, recipients, conn.caps) + rcptLines(first.ids));
  if (opening) s = noReply(s, opening);

  // Each step answers one reply or writes one command: bounded by the command count
  // (LMTP adds one end-of-data reply per recipient).
  const maxSteps = 3 * recipients.length + 8;
  let end: 'done' | 'close' = 'close';
  for (let step = 0; step < maxSteps; step++) {
    const a = nextAction(s);
    if (a.kind === 'done' || a.kind === 'close') {
      end = a.kind;
      conn.state = a.kind === 'close' ? 'closed' : a.rsetFirst ? 'needs-rset' : 'ready';
      break;
    }
    switch (a.kind) {
      case 'read': {
        const r = await conn.read(timeoutFor(conn, a.command), a.command);
        s = isLost(r) ? noReply(s, r) : onReply(s, r.reply);
        break;
      }
      case 'send-rcpt': {
        const next = sendRcpts(s, conn.caps.pipelining ? Infinity : 1);
        s = next.state;
        const l = await conn.write(rcptLines(next.ids));
        if (l) s = noReply(s, l);
        break;
      }
      case 'send-data': {
        if (conn.caps.chunking) {
          // CHUNKING: the first BDAT replaces DATA (no 354); written at send-content.
          s = beginChunks(s);
          break;
        }
        s = sendData(s);
        const l = await conn.write('DATA\r\n');
        if (l) s = noReply(s, l);
        break;
      }
      case 'send-content': {
        if (a.via === 'BDAT') {
          const r = await sendChunks(conn, body, input.chunkSize ?? CHUNK_SIZE, s);
          s = r.state;
          if (r.lost) lost = r.lost;
          break;
        }
        // A large body is gathered, not joined (a clean one is [body, ".\r\n"]); a small one, or one cut into
        // many pieces, is joined: a small copy costs less than a gathered write's bookkeeping.
        const parts = dotStuffParts(body);
        const l = await conn.write(parts.length > 64 || body.length < GATHER_MIN_BYTES ? Buffer.concat(parts) : parts, conn.timeouts.dataBlock);
        if (l) {
          // Not all written: the server cannot have seen the final dot.
          s = noReply(s, l);
          break;
        }
        const r = await conn.read(conn.timeouts.dataDone, 'end of DATA');
        if (isLost(r)) lost = r;
        s = onEndOfData(s, isLost(r) ? undefined : r.reply);
        break;
      }
    }
  }
  if (end === 'close') conn.destroy();
  if (s.phase !== 'settled') s = noReply(s, { lost: 'dropped', detail: 'transaction did not settle (internal step bound)' });

  const o = outcomes(s);
  for (const [id, v] of o.perRecipient) verdicts.set(id, toVerdict(v, conn.label, lost));
  if (o.possibleDuplicate) {
    const dup = [...verdicts].filter(([, v]) => v.kind === 'deferred' && v.possibleDuplicate).map(([id]) => byId.get(id)!.address);
    input.log.warn({ host: conn.label, messageId: message.id, recipients: dup }, 'may be delivered twice (RFC 1047): no reply to end of data');
  }
  const cf = o.connectionFailure;
  const connectionFailure = cf ? (cf.reply ? toLastReply(cf.reply, cf.command, conn.label) : lostReply(lost ?? { lost: 'dropped', detail: cf.lost ?? 'connection lost' }, cf.command, conn.label)) : undefined;
  const limitReached = o.limitReached ? { accepted: o.limitReached.accepted, reply: toLastReply(o.limitReached.reply, 'RCPT TO', conn.label) } : undefined;
  return { verdicts, limitDeferred: o.limitDeferred, mailSent: true, ...(connectionFailure ? { connectionFailure } : {}), ...(limitReached ? { limitReached } : {}) };
}

/**
 * Writes the body as BDAT chunks and feeds each reply to the reducer: a chunk
 * that is not the last to onChunkReply (a refusal settles the transaction and
 * stops the chunks), the last to onEndOfData. A connection lost while a chunk
 * is written is not a possible duplicate (the LAST chunk was not complete); no
 * reply to the LAST chunk is.
 */
async function sendChunks(conn: SmtpConnection, body: Buffer, chunkSize: number, start: TxState): Promise<{ state: TxState; lost?: Lost }> {
  let s = start;
  const size = Math.max(1, Math.floor(chunkSize));
  // At least one chunk: an empty body is "BDAT 0 LAST".
  for (let at = 0; at === 0 || at < body.length; at += size) {
    const part = body.subarray(at, at + size);
    const last = at + size >= body.length;
    const l = await conn.write(Buffer.concat([Buffer.from(`BDAT ${part.length}${last ? ' LAST' : ''}\r\n`, 'latin1'), part]), conn.timeouts.dataBlock);
    if (l) return { state: onNoReply(s, l.detail), lost: l };
    const r = await conn.read(conn.timeouts.dataDone, last ? 'end of DATA' : 'BDAT');
    if (last) return isLost(r) ? { state: onEndOfData(s, undefined), lost: r } : { state: onEndOfData(s, r.reply) };
    if (isLost(r)) return { state: onNoReply(s, r.detail), lost: r };
    s = onChunkReply(s, r.reply);
    if (s.phase !== 'content') return { state: s };
  }
  return { state: s };
}

function toVerdict(v: FinalVerdict, host: string, lost: Lost | undefined): RecipientVerdict {
  const reply = v.reply ? toLastReply(v.reply, v.command, host) : lostReply(lost ?? { lost: 'dropped', detail: v.lost ?? 'connection lost' }, v.command, host);
  switch (v.kind) {
    case 'delivered': return { kind: 'delivered', reply };
    case 'failed': return { kind: 'failed', reply };
    case 'deferred': return { kind: 'deferred', reply, possibleDuplicate: v.possibleDuplicate, connectionLevel: v.connectionLevel };
  }
}

/**
 * dsn/report — builds an RFC 3464 delivery status notification as bytes:
 * a multipart/report (RFC 6522) with a human-readable text/plain part,
 * a message/delivery-status part, and the returned original (message/rfc822,
 * or text/rfc822-headers for RET=HDRS or content over the size cap).
 *
 * Pure: inputs in, Buffer out. The clock (`now`) and the random source are
 * parameters. Also here: `wantsDsn` (RFC 3461 NOTIFY) and `originalHeaders`.
 *
 * Not here: deciding when a report is due, enqueueing it, or who it goes to
 * (the scheduler does that; it must not report to the null sender nor about
 * a message that is itself a DSN — buildDsn refuses the first as a guard).
 *
 * RFC departures, on purpose: remote text that is not ASCII is replaced by '?'
 * rather than carried in message/global-delivery-status (RFC 6533); with RET
 * absent, failure reports return the full content and delay/success reports
 * only the headers (RFC 3461 §4.3 leaves this to the MTA).
 */

import { randomBytes } from 'node:crypto';
import type { Notify } from '../queue/model.js';
import { clean, foldField, isPrintableAscii, MAX_LINE, rfc5322Date, typedAddress } from './fold.js';
import { humanText } from './human.js';
import { DsnError, type DsnAction, type DsnInput, type DsnKind, type DsnRecipient, type DsnReport } from './types.js';

export * from './types.js';

export const DEFAULT_MAX_RETURNED_BYTES = 100 * 1024;
/** Bounded: with 24 random bytes a second collision means the random source is broken. */
const BOUNDARY_TRIES = 8;

const SUBJECT: Record<DsnKind, string> = {
  failure: 'Undelivered Mail Returned to Sender',
  delay: 'Delayed Mail (still being retried)',
  success: 'Successful Mail Delivery Report',
};

const RETURNED_DESCRIPTION: Record<DsnKind, string> = {
  failure: 'Undelivered Message',
  delay: 'Delayed Message',
  success: 'Delivered Message',
};

/** Generic status per action when the given one is not a valid RFC 3463 code. */
const GENERIC_STATUS: Record<DsnAction, string> = {
  failed: '5.0.0',
  delayed: '4.0.0',
  delivered: '2.0.0',
  relayed: '2.0.0',
  expanded: '2.0.0',
};

/**
 * RFC 3461 §4.1: does this recipient's NOTIFY ask for a report of this event?
 * Absent NOTIFY behaves as FAILURE,DELAY; NEVER asks for none.
 *
 * | NOTIFY        | failure | delay | success |
 * |---------------|---------|-------|---------|
 * | absent        | yes     | yes   | no      |
 * | NEVER         | no      | no    | no      |
 * | list          | if FAILURE in list | if DELAY | if SUCCESS |
 */
export function wantsDsn(notify: Notify | undefined, event: 'failure' | 'delay' | 'success'): boolean {
  if (notify === undefined) return event !== 'success';
  if (notify === 'NEVER') return false;
  switch (event) {
    case 'failure':
      return notify.includes('FAILURE');
    case 'delay':
      return notify.includes('DELAY');
    case 'success':
      return notify.includes('SUCCESS');
  }
}

/** The kind a set of recipients makes: any failure wins, then any delay, else success. */
export function reportKind(recipients: readonly Pick<DsnRecipient, 'action'>[]): DsnKind {
  if (recipients.some((r) => r.action === 'failed')) return 'failure';
  if (recipients.some((r) => r.action === 'delayed')) return 'delay';
  return 'success';
}

/**
 * The header block of a stored message (up to and including the CRLF that
 * ends the last header line; the whole content when there is no blank line),
 * and its Message-ID ("<…>", printable ASCII only) and Subject (unfolded, raw).
 */
export function originalHeaders(content: Buffer): { messageId?: string; subject?: string; headerBlock: Buffer } {
  const crlf = content.indexOf('\r\n\r\n');
  const lf = content.indexOf('\n\n');
  let end = content.length;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) end = crlf + 2;
  else if (lf >= 0) end = lf + 1;
  if (content.subarray(0, 2).toString('latin1') === '\r\n') end = 0; // empty header section
  const headerBlock = content.subarray(0, end);
  // utf8 decode: an SMTPUTF8 Subject is UTF-8; other 8-bit bytes become U+FFFD, which is fine for display.
  const unfolded = headerBlock.toString('utf8').replace(/\r?\n(?=[ \t])/g, '');
  const out: { messageId?: string; subject?: string; headerBlock: Buffer } = { headerBlock };
  for (const line of unfolded.split(/\r?\n/)) {
    const m = /^([!-9;-~]+)[ \t]*:(.*)$/s.exec(line);
    if (!m) continue;
    const name = (m[1] ?? '').toLowerCase();
    const value = (m[2] ?? '').trim();
    if (name === 'message-id' && out.messageId === undefined) {
      const id = /<[!-;=?-~]+>/.exec(value);
      if (id) out.messageId = id[0];
    } else if (name === 'subject' && out.subject === undefined) {
      out.subject = value;
    }
  }
  return out;
}

/** Builds the whole report. Throws DsnError for an empty recipient list or the null sender. */
export function buildDsn(input: DsnInput): DsnReport {
  if (input.recipients.length === 0) throw new DsnError('HAL_ERR_DSN_NO_RECIPIENTS', 'a DSN needs at least one recipient');
  if (input.to.trim() === '') throw new DsnError('HAL_ERR_DSN_NULL_SENDER', 'no DSN is sent to the null sender');
  const random = input.random ?? randomBytes;
  const kind = reportKind(input.recipients);
  const orig = input.original;
  const parsed = originalHeaders(orig.content);
  const origMessageId = safeMessageId(orig.messageId ?? parsed.messageId);

  // What to return of the original.
  const cap = input.maxReturnedBytes ?? DEFAULT_MAX_RETURNED_BYTES;
  const ret = orig.ret ?? (kind === 'failure' ? 'FULL' : 'HDRS');
  const overCap = ret === 'FULL' && orig.content.length > cap;
  let returnedBytes: Buffer;
  let returned: DsnReport['returned'];
  if (ret === 'FULL' && !overCap) {
    returnedBytes = orig.content;
    returned = 'full';
  } else if (parsed.headerBlock.length <= cap) {
    returnedBytes = parsed.headerBlock;
    returned = 'headers';
  } else {
    // Cut at a line end so no header is left half-written.
    const cut = parsed.headerBlock.lastIndexOf('\n', cap - 1);
    returnedBytes = parsed.headerBlock.subarray(0, cut >= 0 ? cut + 1 : 0);
    returned = 'headers-truncated';
  }
  const cte = transferEncoding(returnedBytes);

  const human = humanText({
    reportingMta: input.reportingMta,
    kind,
    recipients: input.recipients,
    ...(overCap ? { capped: { limit: cap, size: orig.content.length } } : {}),
    headersTruncated: returned === 'headers-truncated',
  });
  const status = deliveryStatus(input);

  const boundary = chooseBoundary(input.boundary, random, [human, status], returnedBytes);
  const messageId = `<${compactDate(input.now)}.${random(8).toString('hex')}@${hostPart(input.reportingMta)}>`;
  const subject = SUBJECT[kind];
  const multipartCte = cte === '7bit' ? undefined : cte;

  const to = input.to.replace(/[\x00-\x1f\x7f]/g, '');
  const headers: Array<readonly [string, string]> = [
    ['Date', rfc5322Date(input.now)],
    ['From', `Mail Delivery System <${clean(input.postmasterFrom, 254).replace(/ /g, '')}>`],
    ['To', `<${to}>`],
    ['Subject', subject],
    ['Message-ID', messageId],
  ];
  if (origMessageId) headers.push(['In-Reply-To', origMessageId], ['References', origMessageId]);
  headers.push(
    ['Auto-Submitted', 'auto-replied'],
    ['MIME-Version', '1.0'],
    ['Content-Type', `multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`],
  );
  if (multipartCte) headers.push(['Content-Transfer-Encoding', multipartCte]);

  const head = headers.map(([n, v]) => `${n}: ${v}\r\n`).join('');
  const returnedType = returned === 'full' ? 'message/rfc822' : 'text/rfc822-headers';
  const returnedDesc = `${RETURNED_DESCRIPTION[kind]}${returned === 'full' ? '' : ' Headers'}`;
  const parts: Buffer[] = [
    Buffer.from(head + '\r\nThis is a MIME-encapsulated message.\r\n\r\n', 'utf8'),
    Buffer.from(
      `--${boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${human}\r\n`,
      'latin1',
    ),
    Buffer.from(
      `--${boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n${status}\r\n`,
      'latin1',
    ),
    Buffer.from(
      `--${boundary}\r\nContent-Description: ${returnedDesc}\r\nContent-Type: ${returnedType}\r\n` +
        (cte === '7bit' ? '' : `Content-Transfer-Encoding: ${cte}\r\n`) +
        '\r\n',
      'latin1',
    ),
    returnedBytes,
    // The CRLF before the closing delimiter belongs to the delimiter (RFC 2046 §5.1.1).
    Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  ];
  return {
    headers,
    body: Buffer.concat(parts),
    subject,
    messageId,
    kind,
    boundary,
    bodyType: cte === 'binary' ? 'BINARYMIME' : cte === '8bit' ? '8BITMIME' : '7BIT',
    smtputf8: !isPrintableAscii(to),
    returned,
  };
}

/** The message/delivery-status body (RFC 3464 §2.1): per-message group, then one group per recipient. */
export function deliveryStatus(input: DsnInput): string {
  const f = (name: string, value: string): string => foldField(name, value);
  const groups: string[][] = [];
  const msg = [f('Reporting-MTA', `dns; ${clean(input.reportingMta, 255)}`), f('X-Halcyon-Queue-ID', clean(input.original.id, 64))];
  if (input.original.envid !== undefined) msg.push(f('Original-Envelope-Id', clean(input.original.envid, 100)));
  msg.push(f('Arrival-Date', rfc5322Date(input.original.receivedAt)));
  groups.push(msg);
  for (const r of input.recipients) {
    const g: string[] = [];
    if (r.orcpt) g.push(f('Original-Recipient', orcptField(r.orcpt)));
    g.push(f('Final-Recipient', typedAddress(r.address)));
    g.push(f('Action', r.action));
    g.push(f('Status', /^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status) ? r.status : GENERIC_STATUS[r.action]));
    if (r.remoteMta) g.push(f('Remote-MTA', `dns; ${clean(r.remoteMta, 255).replace(/ /g, '')}`));
    if (r.diagnostic) g.push(f('Diagnostic-Code', diagnosticField(r.diagnostic)));
    // An extension field (RFC 3464 §2.4, "X-"): the bounce class, so a program reading the report need not parse the text.
    if (r.diagnostic?.class && /^[A-Za-z]{1,64}$/.test(r.diagnostic.class)) g.push(f('X-Halcyon-Bounce-Class', r.diagnostic.class));
    if (r.lastAttemptAt !== undefined) g.push(f('Last-Attempt-Date', rfc5322Date(r.lastAttemptAt)));
    if (r.action === 'delayed' && r.willRetryUntil !== undefined) g.push(f('Will-Retry-Until', rfc5322Date(r.willRetryUntil)));
    groups.push(g);
  }
  return groups.map((g) => g.join('\r\n') + '\r\n').join('\r\n');
}

function diagnosticField(d: NonNullable<DsnRecipient['diagnostic']>): string {
  const isSmtp = Number.isInteger(d.code) && d.code >= 200 && d.code <= 599;
  const enhanced = d.enhanced && /^[245]\.\d{1,3}\.\d{1,3}$/.test(d.enhanced) ? `${d.enhanced} ` : '';
  return isSmtp ? `smtp; ${d.code} ${enhanced}${clean(d.text)}`.trimEnd() : `x-halcyon; ${enhanced}${clean(d.text)}`.trimEnd();
}

/** "rfc822;alice@x" as stored → "rfc822; alice@x"; a value without a type is taken as rfc822. */
function orcptField(orcpt: string): string {
  const semi = orcpt.indexOf(';');
  if (semi < 0) return typedAddress(orcpt.trim());
  const type = clean(orcpt.slice(0, semi), 32).replace(/ /g, '');
  const addr = orcpt.slice(semi + 1).trim();
  return type.toLowerCase() === 'rfc822' ? typedAddress(addr) : `${type}; ${clean(addr, 998)}`;
}

/**
 * A boundary that occurs nowhere in the parts (case-insensitively, to be safe
 * with lenient parsers). The given one is tried first; then random ones.
 */
function chooseBoundary(first: string | undefined, random: (n: number) => Buffer, texts: string[], content: Buffer): string {
  if (first !== undefined && !/^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/.test(first)) {
    throw new DsnError('HAL_ERR_DSN_BOUNDARY', 'the given boundary is not a valid RFC 2046 boundary');
  }
  const haystack = (texts.join('\n') + '\n' + content.toString('latin1')).toLowerCase();
  for (let i = 0; i < BOUNDARY_TRIES; i++) {
    const candidate = i === 0 && first !== undefined ? first : `=_halcyon_${random(24).toString('hex')}`;
    if (!haystack.includes(candidate.toLowerCase())) return candidate;
  }
  throw new DsnError('HAL_ERR_DSN_BOUNDARY', 'no boundary absent from the content was found');
}

/** 7bit / 8bit / binary for the returned part (RFC 2045 §2.7–2.9). */
function transferEncoding(b: Buffer): '7bit' | '8bit' | 'binary' {
  let eight = false;
  let lineLen = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c === 0x0a) {
      if (i === 0 || b[i - 1] !== 0x0d) return 'binary'; // bare LF
      lineLen = 0;
      continue;
    }
    if (c === 0x0d) {
      if (b[i + 1] !== 0x0a) return 'binary'; // bare CR
      continue;
    }
    if (c === 0) return 'binary';
    if (c >= 0x80) eight = true;
    if (++lineLen > MAX_LINE) return 'binary';
  }
  return eight ? '8bit' : '7bit';
}

function safeMessageId(id: string | undefined): string | undefined {
  if (id === undefined) return undefined;
  return /^<[!-;=?-~]{1,900}>$/.test(id) ? id : undefined;
}

/** A Message-ID right-hand side: our host name reduced to dot-atom characters. */
const hostPart = (host: string): string => host.replace(/[^A-Za-z0-9.\-]/g, '') || 'localhost';

const compactDate = (ms: number): string => new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);

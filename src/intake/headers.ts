/**
 * intake/headers — the header work done on every new message before it is
 * queued: the trace header Halcyon prepends (RFC 5321 §4.4), the hop count
 * used for loop detection, and the Message-ID and Date a local submission
 * gets when its author's client left them out (RFC 6409 §8).
 *
 * Pure text work on the header block; the body is never parsed. Which of
 * these a message gets is intake/intake's decision, by where it came from.
 */
import { randomBytes } from 'node:crypto';
import type { Trace } from '../queue/model.js';

/** RFC 5322 date-time, e.g. "Sat, 28 Nov 2026 01:02:03 +0000". */
export function rfc5322Date(ms: number): string {
  const d = new Date(ms);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

export function receivedHeader(opts: { trace: Trace; hostname: string; id: string; recipient?: string; now: number }): string {
  const t = opts.trace;
  const helo = t.clientHelo.replace(/[^\x21-\x7e]/g, '?').slice(0, 255);
  let h = `Received: from ${helo} ([${t.clientIp}])`;
  if (t.tls) h += `\r\n\t(using ${t.tls})`;
  if (t.authUser) h += `\r\n\t(authenticated as ${t.authUser.replace(/[^\x21-\x7e]/g, '?')})`;
  h += `\r\n\tby ${opts.hostname} (Halcyon) with ${t.protocol} id ${opts.id}`;
  if (opts.recipient) h += `\r\n\tfor <${opts.recipient}>`;
  h += `; ${rfc5322Date(opts.now)}\r\n`;
  return h;
}

/** The header block (up to the first empty line), as latin1 text. */
export function headerBlock(content: Buffer): string {
  const end = content.indexOf('\r\n\r\n');
  return content.toString('latin1', 0, end < 0 ? content.length : end + 2);
}

export function countHeader(headers: string, name: string): number {
  const re = new RegExp(`^${name}:`, 'gim');
  return headers.match(re)?.length ?? 0;
}

/** The first `name` field's value, unfolded and trimmed (its continuation lines joined); undefined when there is none. */
export function headerValue(headers: string, name: string): string | undefined {
  const m = new RegExp(`^${name}[ \\t]*:([^\\r\\n]*(?:\\r\\n[ \\t][^\\r\\n]*)*)`, 'im').exec(headers);
  return m ? m[1]!.replace(/\r\n[ \t]/g, ' ').trim() : undefined;
}

/** Headers a submission server adds when the author's client did not (RFC 6409 §8). */
export function submissionHeaders(headers: string, hostname: string, now: number): string {
  let add = '';
  if (countHeader(headers, 'Message-ID') === 0) add += `Message-ID: <${now.toString(36)}.${randomBytes(6).toString('hex')}@${hostname}>\r\n`;
  if (countHeader(headers, 'Date') === 0) add += `Date: ${rfc5322Date(now)}\r\n`;
  return add;
}

/**
 * The content with the header fields `drop(name, value)` selects removed
 * (with their continuation lines); the body is untouched. Returns the same
 * buffer when nothing is removed.
 */
export function removeHeaders(content: Buffer, drop: (name: string, value: string) => boolean): Buffer {
  const end = content.indexOf('\r\n\r\n');
  const headEnd = end < 0 ? content.length : end + 2;
  const head = content.toString('latin1', 0, headEnd);
  const fields = head.match(/[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*/g) ?? [];
  // A header block that does not split cleanly into CRLF-ended fields is left alone rather than cut.
  if (fields.join('').length !== head.length) return content;
  let removed = false;
  const kept = fields.filter((f) => {
    const colon = f.indexOf(':');
    if (colon <= 0) return true;
    const out = drop(f.slice(0, colon).trim().toLowerCase(), f.slice(colon + 1));
    removed ||= out;
    return !out;
  });
  if (!removed) return content;
  return Buffer.concat([Buffer.from(kept.join(''), 'latin1'), content.subarray(headEnd)]);
}

/** RFC 8601 §5: whether an Authentication-Results value names `hostname` as its authserv-id. */
export function claimsAuthserv(value: string, hostname: string): boolean {
  const id = value.replace(/\([^)]*\)/g, ' ').trim().split(/[\s;]/)[0] ?? '';
  return id.toLowerCase() === hostname.toLowerCase();
}

/** The header Halcyon writes on mail quarantined by a DMARC policy (and removes from any incoming message). */
export const QUARANTINE_HEADER = 'X-Halcyon-Quarantine';

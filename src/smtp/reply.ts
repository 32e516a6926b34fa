/**
 * smtp/reply — an SMTP reply as a value: basic code, the RFC 3463 enhanced
 * code when the text begins with one whose class matches, and the text lines.
 *
 * Pure: formatting for the server side, incremental parsing for the client
 * side (ReplyParser), no sockets.
 */

export interface Reply {
  readonly code: number;
  /** "5.2.2" — only when the first line's text starts with N.N.N and N matches code's first digit. */
  readonly enhanced?: string;
  /** Text of each line, without the code, separator and enhanced code. */
  readonly lines: readonly string[];
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/;

/** Splits a first-line text into its enhanced code (if valid for code) and the rest. */
export function splitEnhanced(code: number, text: string): { enhanced?: string; rest: string } {
  const m = ENHANCED.exec(text);
  if (!m || Number(m[1]) !== Math.floor(code / 100)) return { rest: text };
  return { enhanced: `${m[1]}.${Number(m[2])}.${Number(m[3])}`, rest: text.slice(m[0].length) };
}

export const replyText = (r: Reply): string => r.lines.join(' ');

/** "552 5.2.2 Mailbox full" — one line, for logs and stored last replies. */
export function describeReply(r: Reply): string {
  return `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${replyText(r)}`.trimEnd();
}

/**
 * Server side: formats a reply with its enhanced code on every line (RFC 2034
 * §3), CRLF-terminated. Text lines must not contain CR or LF; any found are
 * replaced by spaces so a reply can never be split by its own text.
 */
export function formatReply(code: number, enhanced: string | undefined, ...lines: string[]): string {
  const clean = (lines.length ? lines : ['']).map((l) => l.replace(/[\r\n]+/g, ' '));
  let out = '';
  for (let i = 0; i < clean.length; i++) {
    const sep = i === clean.length - 1 ? ' ' : '-';
    out += `${code}${sep}${enhanced ? `${enhanced} ` : ''}${clean[i]}\r\n`;
  }
  return out;
}

/**
 * What one reply may hold before the peer counts as broken. RFC 5321 §4.5.3.1.5
 * allows 512 octets per reply line; we allow four times that, and a reply of
 * at most 128 lines / 64 KiB (the longest real EHLO replies are ~30 lines).
 * Without these a remote streaming `250-` lines forever grows our memory
 * without end (issue 10); with them it costs 64 KiB and a connection failure.
 */
export interface ReplyLimits {
  readonly maxLine: number;
  readonly maxLines: number;
  readonly maxBytes: number;
}
export const REPLY_LIMITS: ReplyLimits = { maxLine: 2048, maxLines: 128, maxBytes: 64 * 1024 };

/**
 * Client side: feed it bytes, take complete replies out. Malformed lines
 * produce a reply with code 0 so the caller treats the peer as broken. A line
 * or a reply over its limit makes the parser `broken` (a reason string): it
 * then drops everything it is given, and the caller must close the connection.
 */
export class ReplyParser {
  private buf = '';
  private pending: { code: number; lines: string[]; bytes: number } | undefined;
  private why: string | undefined;
  private readonly limits: ReplyLimits;
  constructor(limits: Partial<ReplyLimits> = {}) {
    this.limits = { ...REPLY_LIMITS, ...limits };
  }

  /** Why the peer's replies broke the limits; undefined while they have not. */
  get broken(): string | undefined {
    return this.why;
  }

  push(chunk: Buffer | string): Reply[] {
    const out: Reply[] = [];
    if (this.why) return out;
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const { maxLine } = this.limits;
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', start);
      const lineEnd = nl < 0 ? this.buf.length : nl > start && this.buf[nl - 1] === '\r' ? nl - 1 : nl;
      if (lineEnd - start > maxLine) return this.fail(out, `a reply line longer than ${maxLine} octets`);
      if (nl < 0) break;
      const r = this.line(this.buf.slice(start, lineEnd));
      start = nl + 1;
      if (this.why) return out;
      if (r) out.push(r);
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  /** Bytes received that are not yet part of a complete reply (used to detect STARTTLS injection). */
  get buffered(): number {
    return this.buf.length + (this.pending ? 1 : 0);
  }

  reset(): void {
    this.buf = '';
    this.pending = undefined;
    this.why = undefined;
  }

  private fail(out: Reply[], why: string): Reply[] {
    this.why = why;
    this.buf = '';
    this.pending = undefined;
    return out;
  }

  private line(line: string): Reply | undefined {
    // Control characters (a bare CR inside a line, NUL …) never belong in reply text; they become spaces.
    const m = /^(\d{3})([ -]?)(.*)$/s.exec(line.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ' '));
    if (!m) {
      this.pending = undefined;
      return { code: 0, lines: [line] };
    }
    const code = Number(m[1]);
    const more = m[2] === '-';
    const text = m[3] ?? '';
    if (!this.pending) this.pending = { code, lines: [], bytes: 0 };
    this.pending.lines.push(text);
    this.pending.bytes += line.length + 2;
    if (this.pending.lines.length > this.limits.maxLines || this.pending.bytes > this.limits.maxBytes) {
      this.fail([], `a reply longer than ${this.limits.maxLines} lines or ${this.limits.maxBytes} octets`);
      return undefined;
    }
    if (more) return undefined;
    const { code: c, lines } = this.pending;
    this.pending = undefined;
    const { enhanced, rest } = splitEnhanced(c, lines[0] ?? '');
    const stripped = lines.map((l, i) => (i === 0 ? rest : enhanced ? splitEnhanced(c, l).rest : l));
    return enhanced ? { code: c, enhanced, lines: stripped } : { code: c, lines: stripped };
  }
}

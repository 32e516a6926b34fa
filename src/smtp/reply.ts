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
export const isPositive = (r: Reply): boolean => r.code >= 200 && r.code < 400;
export const isTransient = (r: Reply): boolean => r.code >= 400 && r.code < 500;
export const isPermanent = (r: Reply): boolean => r.code >= 500;

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
 * Client side: feed it bytes, take complete replies out. Lines longer than
 * maxLine are truncated rather than buffered without bound. Malformed lines
 * produce a reply with code 0 so the caller treats the peer as broken.
 */
export class ReplyParser {
  private buf = '';
  private pending: { code: number; lines: string[] } | undefined;
  constructor(private readonly maxLine = 4096) {}

  push(chunk: Buffer | string): Reply[] {
    this.buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    const out: Reply[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) {
        if (this.buf.length > this.maxLine) this.buf = this.buf.slice(0, this.maxLine);
        break;
      }
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      const r = this.line(line);
      if (r) out.push(r);
    }
    return out;
  }

  /** Bytes received that are not yet part of a complete reply (used to detect STARTTLS injection). */
  get buffered(): number {
    return this.buf.length + (this.pending ? 1 : 0);
  }

  reset(): void {
    this.buf = '';
    this.pending = undefined;
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
    if (!this.pending) this.pending = { code, lines: [] };
    this.pending.lines.push(text);
    if (more) return undefined;
    const { code: c, lines } = this.pending;
    this.pending = undefined;
    const { enhanced, rest } = splitEnhanced(c, lines[0] ?? '');
    const stripped = lines.map((l, i) => (i === 0 ? rest : enhanced ? splitEnhanced(c, l).rest : l));
    return enhanced ? { code: c, enhanced, lines: stripped } : { code: c, lines: stripped };
  }
}

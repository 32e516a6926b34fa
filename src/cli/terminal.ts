/**
 * cli/terminal — text that came with mail (addresses, headers, bodies, a
 * remote's replies), made safe to print on a terminal: control characters
 * are shown escaped (`\x1b`), never sent, so a message cannot clear the
 * screen, retitle the window, write to the clipboard (OSC 52) or reorder
 * what is shown (bidi overrides). Pure; does not print.
 */

/** C0 controls but TAB (and LF when kept), DEL, C1 controls, and the bidirectional overrides that reorder what is shown. */
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_KEEP_LF = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
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

/** Bytes from mail as text: UTF-8 when they are; otherwise each byte ≥ 0x80 shown as \xNN (8-bit mail in another charset). */
export function decodeForTerminal(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('latin1').replace(/[\x80-\xff]/g, escapeChar);
  }
}

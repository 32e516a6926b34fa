/**
 * dsn/fold — making untrusted text safe to place in a report, and laying
 * header-style fields out on lines.
 *
 * Everything a remote server says (reply text, host names it announces) is
 * hostile: it may carry CR/LF to inject header fields, or a MIME boundary to
 * inject parts. `clean()` reduces any such text to one line of printable
 * 7-bit ASCII; `foldField()` then folds a field at whitespace so every line
 * stays ≤ 78 characters where possible and ≤ 998 always (RFC 5322 §2.1.1).
 *
 * Pure string work: no MIME structure (see report.ts), no I/O.
 */

/** RFC 5322 §2.1.1: the hard limit, without CRLF. */
export const MAX_LINE = 998;
/** RFC 5322 §2.1.1: the preferred limit. */
export const SOFT_LINE = 78;
/** Longest cleaned text we keep; a reply can be many lines of 4 KiB each. */
export const MAX_TEXT = 4000;

/**
 * One line of printable ASCII: control characters (CR, LF, NUL, DEL, …) and
 * tabs become spaces, runs of whitespace collapse to one space, anything
 * outside ASCII becomes '?'. Over MAX_TEXT characters it is cut, and says so.
 */
export function clean(text: string, max = MAX_TEXT): string {
  // Controls become spaces (not nothing) so "full\r\nX-Injected" stays two words.
  let out = text
    .replace(/[\x00-\x1f\x7f]/g, ' ')
    .replace(/[^\x00-\x7f]/gu, '?')
    .replace(/ {2,}/g, ' ')
    .trim();
  if (out.length > max) out = `${out.slice(0, max - 3)}...`;
  return out;
}

/** True when every character is printable ASCII (no controls, no 8-bit). */
export const isPrintableAscii = (s: string): boolean => /^[\x20-\x7e]*$/.test(s);

/**
 * An address for a DSN field: `rfc822; addr` when ASCII, else RFC 6533's
 * `utf-8; ` form with non-ASCII code points written as \x{HEX}, which keeps
 * message/delivery-status 7-bit. Controls are dropped, backslashes escaped.
 */
export function typedAddress(address: string): string {
  const noCtl = address.replace(/[\x00-\x1f\x7f]/g, '');
  if (isPrintableAscii(noCtl)) return `rfc822; ${noCtl}`;
  let out = '';
  for (const ch of noCtl) {
    const cp = ch.codePointAt(0) ?? 0;
    // RFC 6533 utf-8-addr-xtext: '\', '+', '=' and non-ASCII are escaped.
    out += cp > 0x7e || ch === '\\' || ch === '+' || ch === '=' ? `\\x{${cp.toString(16).toUpperCase()}}` : ch;
  }
  return `utf-8; ${out}`;
}

/**
 * Folds `Name: value` into lines joined by CRLF, breaking only before a space
 * (so unfolding restores the value exactly). A word too long for MAX_LINE is
 * split hard — the one case where unfolding adds a space, preferable to an
 * illegal line. `value` must already be clean (one line, no controls).
 */
export function foldField(name: string, value: string, width = SOFT_LINE): string {
  const words = value.split(' ').filter((w) => w.length > 0);
  const lines: string[] = [];
  let line = `${name}:`;
  for (const raw of words) {
    for (const word of chunk(raw, MAX_LINE - 2)) {
      if (line.length + 1 + word.length > width && line.trim().length > name.length + 1) {
        lines.push(line);
        line = ` ${word}`;
      } else {
        line += ` ${word}`;
      }
    }
  }
  lines.push(line);
  return lines.join('\r\n');
}

/**
 * Wraps a paragraph of clean text for the human-readable part: first line at
 * column 0, continuation lines indented by `indent` (Postfix indents by four),
 * which also means no continuation line can begin a header or a boundary.
 */
export function wrapText(text: string, width = SOFT_LINE, indent = '    '): string[] {
  const words = text.split(' ').filter((w) => w.length > 0);
  const lines: string[] = [];
  let line = '';
  for (const raw of words) {
    for (const word of chunk(raw, MAX_LINE - indent.length - 1)) {
      if (line === '') line = lines.length ? `${indent}${word}` : word;
      else if (line.length + 1 + word.length > width) {
        lines.push(line);
        line = `${indent}${word}`;
      } else line += ` ${word}`;
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines;
}

function chunk(word: string, size: number): string[] {
  if (word.length <= size) return [word];
  const out: string[] = [];
  for (let i = 0; i < word.length; i += size) out.push(word.slice(i, i + size));
  return out;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const pad = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 §3.3 date-time in UTC: "Tue, 01 Jul 2025 12:00:00 +0000". */
export function rfc5322Date(epochMs: number): string {
  const d = new Date(epochMs);
  return (
    `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`
  );
}

/**
 * smtp/dotstuff — the sending side of DATA: content in, wire bytes out.
 *
 * Makes every line end in CRLF (a bare CR or LF becomes CRLF, so Halcyon never
 * relays one), doubles a leading dot on each line (RFC 5321 §4.5.2), ensures
 * the content ends with CRLF and appends the terminating ".\r\n". Pure.
 */

import { isAscii } from 'node:buffer';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export function dotStuff(content: Buffer): Buffer {
  const out = Buffer.allocUnsafe(content.length * 2 + 5);
  let o = 0;
  let lineStart = true;
  let nextCr = -1;
  let nextLf = -1;
  for (let i = 0; i < content.length; i++) {
    const b = content[i]!;
    if (b !== CR && b !== LF && !(lineStart && b === DOT)) {
      // Ordinary text up to the next line end is copied as one run (native memchr finds the end).
      if (nextCr < i) nextCr = content.indexOf(CR, i) >>> 0;
      if (nextLf < i) nextLf = content.indexOf(LF, i) >>> 0;
      const end = Math.min(nextCr, nextLf, content.length);
      o += content.copy(out, o, i, end);
      lineStart = false;
      i = end - 1;
      continue;
    }
    if (b === CR) {
      out[o++] = CR;
      out[o++] = LF;
      if (content[i + 1] === LF) i++;
      lineStart = true;
      continue;
    }
    if (b === LF) {
      out[o++] = CR;
      out[o++] = LF;
      lineStart = true;
      continue;
    }
    if (lineStart && b === DOT) out[o++] = DOT;
    out[o++] = b;
    lineStart = false;
  }
  if (!lineStart) {
    out[o++] = CR;
    out[o++] = LF;
  }
  out[o++] = DOT;
  out[o++] = CR;
  out[o++] = LF;
  return out.subarray(0, o);
}

/** True when the content has octets above 127 (needs 8BITMIME to be sent as is). */
export function has8bit(content: Buffer): boolean {
  // Native (SIMD) scan: a byte loop here cost 5–8 % of the main thread on 100 KiB mail, run twice per delivery.
  return !isAscii(content);
}

/**
 * cli/terminal — text that came with mail (addresses, headers, bodies, a
 * remote's replies), made safe to print on a terminal: control characters
 * are shown escaped (`\x1b`), never sent, so a message cannot clear the
 * screen, retitle the window, write to the clipboard (OSC 52) or reorder
 * what is shown (bidi overrides). Pure; does not print. `printable` itself
 * lives in queue/describe (which the dashboard serves to the browser as it
 * is, so that file imports nothing).
 */

import { escapeChar, printable } from '../queue/describe.js';

export { printable };

/** Bytes from mail as text: UTF-8 when they are; otherwise each byte ≥ 0x80 shown as \xNN (8-bit mail in another charset). */
export function decodeForTerminal(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bytes.toString('latin1').replace(/[\x80-\xff]/g, escapeChar);
  }
}

/**
 * delivery/wire-check — the last gate before a MAIL FROM or RCPT TO line is
 * written: the line must parse back, with the same pure parsers the inbound
 * session uses (smtp/command, smtp/address), to exactly the envelope we meant
 * to send — the same mailbox and the same ESMTP parameters, nothing more.
 *
 * Why: an address is stored as text and written between `<` and `>`. If any
 * writer ever stores one that was not produced by `formatMailbox` (a quoted
 * local part that lost its quotes, say `evil@x> RET=FULL`), the line would
 * smuggle parameters or a second path to the remote. Checking the line
 * itself, rather than trusting every writer, closes that for good. A refusal
 * is a permanent failure of that sender or recipient (send.ts), never a
 * crash and never a partial line on the wire.
 *
 * Pure. Does not build lines (send.ts does) or decide retries.
 */
import { formatMailbox, parseMailbox, parsePath } from '../smtp/address.js';
import { isCommandError, parseCommand } from '../smtp/command.js';

/**
 * Why `line` (ending in CRLF) is not `verb` with `address` and exactly
 * `params`, or undefined when it is. `address` is '' for the null sender.
 */
export function wireMismatch(verb: 'MAIL' | 'RCPT', line: string, address: string, params: readonly string[]): string | undefined {
  if (!line.endsWith('\r\n')) return 'line does not end in CRLF';
  const body = line.slice(0, -2);
  if (/[\r\n\0]/.test(body)) return 'line holds CR, LF or NUL';
  const cmd = parseCommand(body);
  if (isCommandError(cmd)) return `line does not parse: ${cmd.error === 'syntax' ? cmd.detail : 'unknown command'}`;
  if (cmd.verb !== verb) return `line parses as ${cmd.verb}, not ${verb}`;
  const path = parsePath(cmd.path, { utf8: true, allowNull: verb === 'MAIL' });
  if ('error' in path) return `path ${cmd.path} does not parse: ${path.detail}`;
  if (path.sourceRoute) return 'path parses with a source route';
  if (address === '') {
    if (path.mailbox) return `null sender written as ${cmd.path}`;
  } else {
    const meant = parseMailbox(address, true);
    if ('error' in meant) return `stored address does not parse: ${meant.detail}`;
    if (!path.mailbox || formatMailbox(path.mailbox) !== formatMailbox(meant)) return `path ${cmd.path} is not the stored address`;
  }
  const got = cmd.params.split(' ').filter((p) => p !== '');
  if (got.length !== params.length || got.some((p, i) => p !== params[i])) return `parameters "${cmd.params}" are not the ones meant`;
  return undefined;
}

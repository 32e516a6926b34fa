/**
 * cli/queue-tools-format — the text (and JSON) of `halcyon queue shape`
 * (Postfix's qshape: a right-aligned table of keys × age buckets) and
 * `halcyon queue cat` (Postfix's postcat: envelope with each recipient's
 * reply history, headers, body).
 *
 * Pure functions of what the admin API returned and a clock. Everything that
 * came with mail (addresses, headers, body, remote replies) goes through
 * cli/terminal's `printable` before it reaches a terminal, so a message
 * cannot drive the terminal that reads it. `--raw` output (bytes as stored)
 * is not made here.
 */
import type { MessageDetail } from '../http/admin-api.js';
import type { QueueShape, ShapeRow } from '../http/queue-shape.js';
import { age, attemptsMade, describeReply, nextText } from '../queue/describe.js';
import { decodeForTerminal, printable } from './terminal.js';

// ---- queue shape ----

/** qshape's column heads: "T" (total), each bucket's upper bound in minutes, then "1280+". */
export function shapeHeads(s: QueueShape): string[] {
  const bounds = s.bucketsMinutes;
  return ['T', ...bounds.map((b, i) => (b === null ? `${bounds[i - 1] ?? 0}+` : String(b)))];
}

/**
 * The qshape table: the TOTAL row first, one row per key, largest first; held recipients below in a
 * table of their own (HELD first). Every column right-aligned, both tables on the same widths.
 */
export function formatShape(s: QueueShape): string {
  const heads = shapeHeads(s);
  const cells = (r: ShapeRow) => [printable(r.key), String(r.total), ...r.counts.map(String)];
  const waiting = [s.total, ...s.rows].map(cells);
  const held = s.held.total > 0 ? [s.held, ...s.heldRows].map(cells) : [];
  const all = [['', ...heads], ...waiting, ...held];
  const w = all[0]!.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(w[i] ?? 0)).join(' ');
  let out = [['', ...heads], ...waiting].map(line).join('\n');
  out += `\n\n${s.held.total > 0 ? `held (no delivery until released):\n${[['', ...heads], ...held].map(line).join('\n')}` : 'held: none'}\n`;
  return out;
}

// ---- queue cat ----

export interface CatParts {
  readonly envelope: boolean;
  readonly headers: boolean;
  readonly body: boolean;
}

export interface HeaderField { readonly name: string; readonly value: string }

/** The header block and the body of a stored message (split at the first empty line). */
export function splitMessage(content: Buffer): { header: Buffer; body: Buffer } {
  const crlf = content.indexOf('\r\n\r\n');
  const lf = content.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { header: content.subarray(0, crlf + 2), body: content.subarray(crlf + 4) };
  if (lf >= 0) return { header: content.subarray(0, lf + 1), body: content.subarray(lf + 2) };
  return { header: content, body: Buffer.alloc(0) };
}

/** Header fields in order, unfolded (the line breaks of a folded value removed, its whitespace kept). */
export function headerFields(header: Buffer): HeaderField[] {
  const text = header.toString('utf8').replace(/\r?\n(?=[ \t])/g, '');
  const out: HeaderField[] = [];
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.push({ name: line.slice(0, i), value: line.slice(i + 1).trim() });
  }
  return out;
}

/** `queue cat --json`: the envelope and recipients (with history) of `show`, all header fields, the body as text (or base64 when it is not UTF-8). */
export function catJson(d: MessageDetail, content: Buffer, parts: CatParts): Record<string, unknown> {
  const { header, body } = splitMessage(content);
  const out: Record<string, unknown> = { id: d.message.id };
  if (parts.envelope) Object.assign(out, { message: d.message, recipients: d.recipients });
  if (parts.headers) out.headers = headerFields(header);
  if (parts.body) {
    try {
      out.body = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      out.bodyBase64 = body.toString('base64');
    }
  }
  return out;
}

const line = (label: string, value: string) => `${`${label}:`.padEnd(22)}${value}\n`;

/** postcat's text: envelope records (with each recipient's attempts), the header block, the body; each part when asked. */
export function formatCat(d: MessageDetail, content: Buffer, parts: CatParts, now: number): string {
  const m = d.message;
  const t = m.trace;
  const { header, body } = splitMessage(content);
  let out = '';
  if (parts.envelope) {
    out += `*** ENVELOPE RECORDS ${m.id} ***\n`;
    out += line('message_size', String(m.size));
    out += line('message_arrival_time', `${new Date(m.receivedAt).toUTCString()} (${age(now - m.receivedAt)} ago)`);
    out += line('sender', printable(m.sender === '' ? '<>' : m.sender));
    out += line('client', printable(`${t.clientHelo} [${t.clientIp}]`));
    out += line('protocol', printable(`${t.protocol}${t.listener ? ` on ${t.listener}` : ''}`));
    if (t.tls) out += line('tls', printable(t.tls));
    if (t.authUser) out += line('sasl_username', printable(t.authUser));
    const params = [m.params.body && `body=${m.params.body}`, m.params.smtputf8 && 'smtputf8', m.params.envid && `envid=${m.params.envid}`, m.params.ret && `ret=${m.params.ret}`].filter(Boolean);
    if (params.length > 0) out += line('parameters', printable(params.join(' ')));
    if (m.held) out += line('held', 'yes (no delivery until released)');
    if (m.dsnFor) out += line('dsn_for', m.dsnFor);
    for (const r of d.recipients) {
      const when = nextText(r, now, 'next attempt in').replace(/^ /, ', ');
      out += line('recipient', printable(`<${r.address}>  ${r.state}, ${attemptsMade(r.history)} attempt(s)${when}  via ${r.destination}`));
      if (r.orcpt) out += line('  original_recipient', printable(r.orcpt));
      for (const a of r.history) {
        out += `    ${new Date(a.at).toISOString()}  ${a.state.padEnd(9)}${a.reply ? ` ${describeReply(a.reply)}` : ''}\n`;
      }
    }
  }
  if (parts.headers) out += `*** HEADERS ${m.id} ***\n${printable(decodeForTerminal(header), true)}`;
  if (parts.body) {
    const text = printable(decodeForTerminal(body), true);
    out += `*** BODY ${m.id} ***\n${text}${text === '' || text.endsWith('\n') ? '' : '\n'}`;
  }
  return `${out}*** END ${m.id} ***\n`;
}

/**
 * cli/format — text renderings of queue listings, in the spirit of `mailq`
 * but one line per recipient with its state and last reply. Text that came
 * with mail or from a remote (addresses, headers, replies) is printed through
 * `printable`: escaped control characters, never raw ones.
 *
 * The dashboard serves this file to the browser as it is (http/dashboard):
 * it imports nothing but types.
 */
import type { DestinationInfo, ListedRecipient, MessageDetail } from '../http/admin.js';
import type { LastReply, MessageRow, RecipientRow } from '../queue/model.js';

/** C0 controls but TAB (and LF when kept), DEL, C1 controls, and the bidirectional overrides that reorder what is shown. */
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_KEEP_LF = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function escapeChar(c: string): string {
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

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * One reply as a person reads it: "host H said: 550 5.1.1 … (in reply to RCPT TO)" when H answered;
 * "connect to H failed: connect failed (ECONNREFUSED) [recorded as 451 4.4.1]" when no reply came.
 */
export function describeReply(l: LastReply): string {
  return printable(replyText(l));
}

function replyText(l: LastReply): string {
  const code = `${l.code}${l.enhanced ? ` ${l.enhanced}` : ''}`;
  if (l.ours) {
    const step = l.command === 'connect' || l.command === undefined ? 'connect to' : `${l.command} with`;
    return `${l.host ? `${step} ${l.host} failed: ` : ''}${l.text} [no reply; recorded as ${code}]`;
  }
  const where = l.host ? `host ${l.host} said: ` : '';
  const cmd = l.command ? ` (in reply to ${l.command})` : '';
  return `${where}${code} ${l.text}${cmd}`;
}

export function describeLast(r: RecipientRow): string {
  return r.lastReply ? describeReply(r.lastReply) : '';
}

/** " next in 5m (destination backoff)", " held", or "" for a recipient that is not waiting. */
export function nextText(r: ListedRecipient, now: number, prefix = 'next in'): string {
  if (r.state !== 'deferred' && r.state !== 'queued') return '';
  const n = r.next ?? { at: r.nextAttemptAt, why: 'retry' as const };
  if (n.why === 'held') return ' held (no attempt until released)';
  if (n.why === 'destination suspended') return ' destination suspended';
  return ` ${prefix} ${age(n.at - now)}${n.why === 'destination backoff' ? ' (destination backoff)' : ''}`;
}

export function formatQueueList(list: { message: MessageRow; recipients: ListedRecipient[] }[], now: number): string {
  if (list.length === 0) return 'Mail queue is empty\n';
  let out = '';
  for (const { message: m, recipients } of list) {
    out += `${m.id}  ${age(now - m.receivedAt).padStart(6)}  ${String(m.size).padStart(8)}  <${printable(m.sender)}>${m.held ? '  (held)' : ''}\n`;
    for (const r of recipients) {
      const last = describeLast(r);
      const when = nextText(r, now);
      out += `    ${r.state.padEnd(9)} <${printable(r.address)}>  attempts=${r.attempts}${when}${last ? `\n              ${last}` : ''}\n`;
    }
  }
  return `${out}-- ${list.length} message(s), ${list.reduce((n, x) => n + x.recipients.length, 0)} recipient(s)\n`;
}

/** `queue show`: the envelope, a header summary and each recipient with its attempt history. */
export function formatMessageDetail(d: MessageDetail, now: number): string {
  const m = d.message;
  const t = m.trace;
  let out = `Message ${m.id}${m.held ? '  (held)' : ''}${m.dsnFor ? `  (DSN about ${m.dsnFor})` : ''}\n`;
  out += `  sender:    <${printable(m.sender)}>\n`;
  out += `  received:  ${new Date(m.receivedAt).toISOString()} (${age(now - m.receivedAt)} ago) from ${printable(`${t.clientHelo} [${t.clientIp}] with ${t.protocol}${t.authUser ? ` as ${t.authUser}` : ''}`)}\n`;
  out += `  size:      ${m.size}${m.params.body ? `  body=${m.params.body}` : ''}${m.params.envid ? `  envid=${m.params.envid}` : ''}${m.params.ret ? `  ret=${m.params.ret}` : ''}\n`;
  for (const [k, v] of Object.entries(d.headers)) out += `  ${`${k}:`.padEnd(11)}${printable(v)}\n`;
  out += 'Recipients:\n';
  for (const r of d.recipients) {
    const when = nextText(r, now, 'next attempt in').replace(/^ /, ', ');
    out += `  <${printable(r.address)}>  ${r.state}, ${r.attempts} attempt(s)${when}  via ${r.destination}\n`;
    for (const a of r.history) {
      const l = a.reply;
      out += `      ${new Date(a.at).toISOString()}  ${a.state.padEnd(9)}${l ? ` ${describeReply(l)}` : ''}\n`;
    }
  }
  return out;
}

/** `halcyon destinations`: one line per destination. */
export function formatDestinations(list: readonly DestinationInfo[], now: number): string {
  if (list.length === 0) return 'No destinations\n';
  const rows = list.map((d) => [
    d.key, d.health === 'backoff' && d.backoffUntil <= now ? 'ok (backoff over)' : d.health, String(d.queued), String(d.connections),
    String(d.consecutiveFailures), d.health === 'backoff' && d.backoffUntil > now ? age(d.backoffUntil - now) : '-',
    (d.tlsReports ?? []).map((r) => `${r.domain === d.key ? '' : `${r.domain} `}${r.mode} ok=${r.success} fail=${r.failure}`).join('; ') || '-', printable(d.lastError ?? ''),
  ]);
  const head = ['DESTINATION', 'HEALTH', 'QUEUED', 'CONNS', 'FAILURES', 'BACKOFF', 'MTA-STS (TLS-RPT)', 'LAST ERROR'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] ?? 0))).join('  ').trimEnd();
  const details = list.flatMap((d) => destinationDetails(d, now));
  return `${[head, ...rows].map(line).join('\n')}\n${details.length > 0 ? `\n${details.join('\n')}\n` : ''}`;
}

/** Below the table: a destination's domains, limits now, what it learned and the rules in force (with the replies that set them). */
function destinationDetails(d: DestinationInfo, now: number): string[] {
  const l = d.politeness;
  const out: string[] = [];
  if (d.domains && d.domains.length > 0) out.push(`  domains: ${d.domains.length <= 10 ? d.domains.join(', ') : `${d.domains.slice(0, 10).join(', ')} … (${d.domains.length})`}`);
  if (l && (l.learnedConnections || l.learnedRecipients || l.rules.length > 0 || l.connectionLimit !== l.connectionCap)) {
    out.push(`  limits: ${l.connectionLimit}/${l.connectionCap} connections, ${l.recipientLimit} recipients per transaction`);
    if (l.learnedConnections) out.push(`  learned: at most ${l.learnedConnections.max} connections for ${age(l.learnedConnections.until - now)} (${printable(l.learnedConnections.reply)})`);
    if (l.learnedRecipients) out.push(`  learned: at most ${l.learnedRecipients.max} recipients per transaction for ${age(l.learnedRecipients.until - now)} (${printable(l.learnedRecipients.reply)})`);
    for (const r of l.rules) out.push(`  rule: ${r.rule} — ${r.action} for ${age(r.until - now)}, triggered by "${printable(r.reply)}"`);
  }
  return out.length > 0 ? [d.key, ...out] : [];
}

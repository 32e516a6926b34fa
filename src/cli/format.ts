/**
 * cli/format — text renderings of queue listings, in the spirit of `mailq`
 * but one line per recipient with its state and last reply.
 */
import type { DestinationInfo, MessageDetail } from '../http/admin.js';
import type { MessageRow, RecipientRow } from '../queue/model.js';

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export function describeLast(r: RecipientRow): string {
  const l = r.lastReply;
  if (!l) return '';
  const where = l.host ? `host ${l.host} said: ` : '';
  const cmd = l.command ? ` (in reply to ${l.command})` : '';
  return `${where}${l.code}${l.enhanced ? ` ${l.enhanced}` : ''} ${l.text}${cmd}`;
}

export function formatQueueList(list: { message: MessageRow; recipients: RecipientRow[] }[], now: number): string {
  if (list.length === 0) return 'Mail queue is empty\n';
  let out = '';
  for (const { message: m, recipients } of list) {
    out += `${m.id}  ${age(now - m.receivedAt).padStart(6)}  ${String(m.size).padStart(8)}  <${m.sender}>${m.held ? '  (held)' : ''}\n`;
    for (const r of recipients) {
      const last = describeLast(r);
      const when = r.state === 'deferred' || r.state === 'queued' ? ` next in ${age(r.nextAttemptAt - now)}` : '';
      out += `    ${r.state.padEnd(9)} <${r.address}>  attempts=${r.attempts}${when}${last ? `\n              ${last}` : ''}\n`;
    }
  }
  return `${out}-- ${list.length} message(s), ${list.reduce((n, x) => n + x.recipients.length, 0)} recipient(s)\n`;
}

/** `queue show`: the envelope, a header summary and each recipient with its attempt history. */
export function formatMessageDetail(d: MessageDetail, now: number): string {
  const m = d.message;
  const t = m.trace;
  let out = `Message ${m.id}${m.held ? '  (held)' : ''}${m.dsnFor ? `  (DSN about ${m.dsnFor})` : ''}\n`;
  out += `  sender:    <${m.sender}>\n`;
  out += `  received:  ${new Date(m.receivedAt).toISOString()} (${age(now - m.receivedAt)} ago) from ${t.clientHelo} [${t.clientIp}] with ${t.protocol}${t.authUser ? ` as ${t.authUser}` : ''}\n`;
  out += `  size:      ${m.size}${m.params.body ? `  body=${m.params.body}` : ''}${m.params.envid ? `  envid=${m.params.envid}` : ''}${m.params.ret ? `  ret=${m.params.ret}` : ''}\n`;
  for (const [k, v] of Object.entries(d.headers)) out += `  ${`${k}:`.padEnd(11)}${v}\n`;
  out += 'Recipients:\n';
  for (const r of d.recipients) {
    const when = r.state === 'deferred' || r.state === 'queued' ? `, next attempt in ${age(r.nextAttemptAt - now)}` : '';
    out += `  <${r.address}>  ${r.state}, ${r.attempts} attempt(s)${when}  via ${r.destination}\n`;
    for (const a of r.history) {
      const l = a.reply;
      out += `      ${new Date(a.at).toISOString()}  ${a.state.padEnd(9)}${l ? ` ${l.host ? `${l.host}: ` : ''}${l.code}${l.enhanced ? ` ${l.enhanced}` : ''} ${l.text}` : ''}\n`;
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
    d.tlsReport ? `${d.tlsReport.mode} ok=${d.tlsReport.success} fail=${d.tlsReport.failure}` : '-', d.lastError ?? '',
  ]);
  const head = ['DESTINATION', 'HEALTH', 'QUEUED', 'CONNS', 'FAILURES', 'BACKOFF', 'MTA-STS (TLS-RPT)', 'LAST ERROR'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] ?? 0))).join('  ').trimEnd();
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

/**
 * cli/format — text renderings of queue listings, in the spirit of `mailq`
 * but one line per recipient with its state and last reply. Text that came
 * with mail or from a remote (addresses, headers, replies) is printed through
 * `printable`: escaped control characters, never raw ones.
 * The wording itself (escaping, ages, a reply, the next attempt) is
 * queue/describe's, shared with the dashboard.
 */
import type { DestinationInfo, ListedRecipient, MessageDetail } from '../http/admin-api.js';
import type { MessageRow } from '../queue/model.js';
import { age, attemptsMade, describeLast, describeReply, nextText, printable } from '../queue/describe.js';
import { destinationTenantLine } from '../queue/describe-tenants.js';

export { age, describeLast, describeReply, escapeChar, nextText, printable } from '../queue/describe.js';

export function formatQueueList(list: { message: MessageRow; recipients: ListedRecipient[] }[], now: number): string {
  if (list.length === 0) return 'Mail queue is empty\n';
  let out = '';
  for (const { message: m, recipients } of list) {
    out += `${m.id}  ${age(now - m.receivedAt).padStart(6)}  ${String(m.size).padStart(8)}  <${printable(m.sender)}>${m.held ? '  (held)' : ''}${senderLabels(m)}\n`;
    for (const r of recipients) {
      const last = describeLast(r);
      const when = nextText(r, now);
      out += `    ${r.state.padEnd(9)} <${printable(r.address)}>  attempts=${r.attempts}${when}${last ? `\n              ${last}` : ''}\n`;
    }
  }
  return `${out}-- ${list.length} message(s), ${list.reduce((n, x) => n + x.recipients.length, 0)} recipient(s)\n`;
}

/** "  tenant=acme campaign=spring" when the message names them (intake decides who sent it). */
function senderLabels(m: MessageRow): string {
  return `${m.tenant ? `  tenant=${printable(m.tenant)}` : ''}${m.campaign ? `  campaign=${printable(m.campaign)}` : ''}`;
}

/** `queue show`: the envelope, a header summary and each recipient with its attempt history. */
export function formatMessageDetail(d: MessageDetail, now: number): string {
  const m = d.message;
  const t = m.trace;
  let out = `Message ${m.id}${m.held ? '  (held)' : ''}${m.dsnFor ? `  (DSN about ${m.dsnFor})` : ''}\n`;
  out += `  sender:    <${printable(m.sender)}>\n`;
  out += `  received:  ${new Date(m.receivedAt).toISOString()} (${age(now - m.receivedAt)} ago) from ${printable(`${t.clientHelo} [${t.clientIp}] with ${t.protocol}${t.authUser ? ` as ${t.authUser}` : ''}`)}\n`;
  if (m.tenant) out += `  tenant:    ${printable(m.tenant)}\n`;
  if (m.campaign) out += `  campaign:  ${printable(m.campaign)}\n`;
  out += `  size:      ${m.size}${m.params.body ? `  body=${m.params.body}` : ''}${m.params.envid ? `  envid=${m.params.envid}` : ''}${m.params.ret ? `  ret=${m.params.ret}` : ''}\n`;
  for (const [k, v] of Object.entries(d.headers)) out += `  ${`${k}:`.padEnd(11)}${printable(v)}\n`;
  out += 'Recipients:\n';
  for (const r of d.recipients) {
    const when = nextText(r, now, 'next attempt in').replace(/^ /, ', ');
    out += `  <${printable(r.address)}>  ${r.state}, ${attemptsMade(r.history)} attempt(s)${when}  via ${r.destination}\n`;
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

/** Below the table: a destination's domains, limits now, what it learned, the rules in force (with the replies that set them), its tenants. */
function destinationDetails(d: DestinationInfo, now: number): string[] {
  const l = d.politeness;
  const out: string[] = [];
  if (d.domains && d.domains.length > 0) out.push(`  domains: ${d.domains.length <= 10 ? d.domains.join(', ') : `${d.domains.slice(0, 10).join(', ')} … (${d.domains.length})`}`);
  if (l?.provider) out.push(`  provider: ${l.provider.name} (${l.provider.origin}): ${l.provider.why}`);
  if (l && (l.provider || l.learnedRate || l.learnedConnections || l.learnedRecipients || l.rules.length > 0 || l.connectionLimit !== l.connectionCap)) {
    const rate = l.ratePerMinute !== undefined ? `, ${Math.round(l.ratePerMinute * 10) / 10} messages/min` : '';
    out.push(`  limits: ${l.connectionLimit}/${l.connectionCap} connections, ${l.recipientLimit} recipients per transaction, ${l.maxMessagesPerConnection ?? '-'} messages per connection${rate}`);
    if (l.learnedRate) out.push(`  adaptive rate: ${Math.round(l.learnedRate.perMinute * 10) / 10}/min since a cut ${age(Math.max(0, now - l.learnedRate.cutAt))} ago (${printable(l.learnedRate.reply)})`);
    if (l.learnedConnections) out.push(`  learned: at most ${l.learnedConnections.max} connections for ${age(l.learnedConnections.until - now)} (${printable(l.learnedConnections.reply)})`);
    if (l.learnedRecipients) out.push(`  learned: at most ${l.learnedRecipients.max} recipients per transaction for ${age(l.learnedRecipients.until - now)} (${printable(l.learnedRecipients.reply)})`);
    for (const r of l.rules) out.push(`  rule: ${r.rule} — ${r.action} for ${age(r.until - now)}, triggered by "${printable(r.reply)}"`);
  }
  for (const t of d.tenants ?? []) out.push(`  ${destinationTenantLine(t, now)}`);
  return out.length > 0 ? [d.key, ...out] : [];
}

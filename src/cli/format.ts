/**
 * cli/format — text renderings of queue listings, in the spirit of `mailq`
 * but one line per recipient with its state and last reply.
 */
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

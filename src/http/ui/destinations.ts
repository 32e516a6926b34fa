/// <reference lib="dom" />
/**
 * http/ui/destinations — the destinations table: health, when the backoff
 * ends, the probe state (a destination in backoff takes one probe
 * connection once its backoff has run out), queued recipients, connections
 * and the last replies its recipients got (from the waiting recipients the
 * overview lists), and under its name the tenants waiting there (suspended
 * or over their rate: the CLI's wording). Pure rendering of GET
 * /api/destinations + /api/queue.
 */
// The CLI's wording of a reply (type-only imports: the browser loads it as it is).
import { describeReply as replyText } from '../../queue/describe.js';
import { destinationTenantLine } from '../../queue/describe-tenants.js';
import type { LastReply as Reply } from '../../queue/model.js';
import type { DestinationInfo, QueueEntry } from './api.js';
import { el, span, table, time } from './dom.js';

export function probeState(d: DestinationInfo, now: number): string {
  if (d.health === 'suspended') return 'suspended by a rule';
  if (d.health === 'ok') return d.consecutiveFailures > 0 ? `ok (${d.consecutiveFailures} failure(s))` : 'ok';
  if (d.backoffUntil > now) return `waiting; one probe after the backoff`;
  return d.connections > 0 ? 'probing now' : 'probe due';
}

/** The last `n` distinct replies of waiting recipients that go to `d` (by its key or one of its domains). */
function lastReplies(d: DestinationInfo, waiting: readonly QueueEntry[], n = 3): Reply[] {
  const keys = new Set([d.key, ...(d.domains ?? [])]);
  const rs = waiting.flatMap((e) => e.recipients).filter((r) => keys.has(r.destination) && r.lastReply)
    .sort((a, b) => b.updatedAt - a.updatedAt).map((r) => r.lastReply!);
  const seen = new Set<string>();
  return rs.filter((r) => { const t = replyText(r); return seen.has(t) ? false : (seen.add(t), true); }).slice(0, n);
}

export function destinationsTable(list: readonly DestinationInfo[], waiting: readonly QueueEntry[], now: number): HTMLTableElement {
  const rows = list.map((d) => {
    const replies = lastReplies(d, waiting);
    const backoff = d.health === 'backoff' && d.backoffUntil > now ? `${time(d.backoffUntil)} (in ${span(d.backoffUntil - now)})` : '';
    return el('tr', { class: `health-${d.health}`, 'data-destination': d.key },
      el('th', { scope: 'row' }, d.key, d.domains?.length ? el('div', { class: 'sub' }, d.domains.join(', ')) : null,
        ...(d.tenants ?? []).map((t) => el('div', { class: 'sub tenant' }, destinationTenantLine(t, now)))),
      el('td', {}, d.health), el('td', {}, backoff), el('td', {}, probeState(d, now)),
      el('td', { class: 'n' }, d.queued), el('td', { class: 'n' }, d.connections),
      el('td', { class: 'replies' }, ...(replies.length > 0 ? replies.map((r) => el('div', { class: 'reply' }, replyText(r))) : [d.lastError ?? ''])));
  });
  return table(['destination', 'health', 'backoff ends', 'probe', 'queued', 'connections', 'last replies'], rows, 'no destinations yet');
}

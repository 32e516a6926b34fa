/// <reference lib="dom" />
/**
 * http/ui/failures — the "Recent failures by class" view: how many recipient
 * outcomes of the last hour failed (deferred, bounced, expired, suppressed)
 * per bounce class, and the latest ones with their recipient, destination and
 * reply. Pure rendering of GET /api/stats/failures (this node's counts).
 */
// The CLI's wording of a reply (type-only imports: the browser loads it as it is).
import { describeReply } from '../../queue/describe.js';
import type { RecentFailures } from '../failures.js';
import { el, table, time } from './dom.js';

export type { RecentFailures };

export function failuresView(f: RecentFailures): HTMLElement {
  const counts = f.classes.map((c) => el('tr', { 'data-class': c.class },
    el('th', { scope: 'row' }, c.class), el('td', { class: 'n' }, c.deferred), el('td', { class: 'n' }, c.bounced),
    el('td', { class: 'n' }, c.expired), el('td', { class: 'n' }, c.suppressed), el('td', { class: 'n' }, c.total)));
  const latest = f.latest.map((e) => el('tr', { 'data-class': e.class },
    el('td', {}, time(e.at)), el('td', {}, e.class), el('td', {}, e.status), el('td', { class: 'addr' }, e.recipient),
    el('td', {}, e.destination), el('td', { class: 'reply' }, describeReply(e.reply))));
  return el('div', { id: 'failures-view' },
    el('p', { class: 'sub' }, `last ${f.minutes} minutes on node ${f.node}`),
    table(['class', 'deferred', 'bounced', 'expired', 'suppressed', 'total'], counts, 'no failures in the last hour'),
    el('h3', {}, 'Latest'),
    table(['time', 'class', 'status', 'recipient', 'destination', 'reply'], latest, 'none'));
}

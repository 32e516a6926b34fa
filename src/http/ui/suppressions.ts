/// <reference lib="dom" />
/**
 * http/ui/suppressions — the dashboard's suppression list: each address in
 * force with why (its class and the reply that put it there, or the
 * operator's reason) and when (since, until), and a button that takes it off
 * the list after asking. Pure rendering of GET /api/suppressions.
 */
import { describeReply } from '../../queue/describe.js';
import type { SuppressionView } from '../admin-suppression.js';
import { unsuppressButton } from './actions.js';
import { el, table, time } from './dom.js';

export function suppressionsTable(list: readonly SuppressionView[], limit: number): HTMLElement {
  const rows = list.map((e) => el('tr', { 'data-address': e.address },
    el('td', { class: 'addr' }, e.address), el('td', {}, e.class), el('td', {}, time(e.since)), el('td', {}, time(e.until)),
    el('td', {}, e.source, e.queueId ? el('div', { class: 'sub' }, el('a', { href: `#/message/${encodeURIComponent(e.queueId)}`, class: 'msgid' }, e.queueId)) : null),
    el('td', { class: 'reply' }, describeReply(e.reply)), el('td', {}, unsuppressButton(e.address))));
  return el('div', {},
    el('p', { class: 'sub' }, `${list.length}${list.length >= limit ? '+' : ''} address(es) in force; \`halcyon suppression list\` shows them all`),
    table(['address', 'class', 'since', 'until', 'source', 'why', ''], rows, 'no address is suppressed'));
}

/// <reference lib="dom" />
/**
 * http/ui/message — one message's page: envelope, the headers a person
 * looks for (Subject, From, To, Message-ID, Date), its actions, and each
 * recipient's attempt history — when, state, the host, the command the
 * reply answered and the reply itself (or that no reply came). Built from
 * GET /api/queue/:id; a deleted message says it is gone.
 */
import { describeReply, nextText } from '../../queue/describe.js';
import { actionButtons } from './actions.js';
import { api, ApiError, type MessageDetail } from './api.js';
import { el, span, table, time } from './dom.js';

const HEADERS = ['subject', 'from', 'to', 'cc', 'date', 'message-id'];

function detail(d: MessageDetail, now: number): HTMLElement {
  const m = d.message;
  const dl = (pairs: [string, string][]) => el('dl', {}, ...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-field': k }, v)]));
  return el('div', { 'data-id': m.id },
    el('h2', {}, 'Message ', el('span', { class: 'msgid' }, m.id), m.held ? el('span', { class: 'badge' }, 'held') : null, ' ', actionButtons(m.id, m.held)),
    dl([['sender', m.sender === '' ? '<>' : m.sender], ['received', `${time(m.receivedAt)} (${span(now - m.receivedAt)} ago)`], ['size', `${m.size} bytes`],
      ['from client', `${m.trace.clientHelo} [${m.trace.clientIp}] via ${m.trace.protocol}`], ...(m.dsnFor ? [['report about', m.dsnFor] as [string, string]] : [])]),
    el('h3', {}, 'Headers'),
    dl(HEADERS.filter((h) => d.headers[h] !== undefined).map((h) => [h, d.headers[h] ?? ''])),
    el('h3', {}, 'Recipients'),
    ...d.recipients.map((r) => el('section', { class: `recipient state-${r.state}`, 'data-recipient': r.address },
      el('h4', {}, el('span', { class: 'addr' }, r.address), ' ', el('span', { class: 'state' }, r.state), ` attempts=${r.attempts}`, nextText(r, now)),
      table(['time', 'state', 'host', 'command', 'reply'], r.history.map((a) => el('tr', { class: 'attempt' },
        el('td', {}, time(a.at)), el('td', {}, a.state), el('td', { class: 'host' }, a.reply?.host ?? ''),
        el('td', { class: 'command' }, a.reply?.command ?? ''), el('td', { class: 'reply' }, a.reply ? describeReply(a.reply) : ''))), 'no attempt yet'))));
}

export class MessagePage {
  readonly root: HTMLElement;
  constructor(private readonly id: string) {
    this.root = el('div', { id: 'message' }, el('p', {}, el('a', { href: '#/' }, '← overview')), el('div', { id: 'message-detail' }, 'loading…'));
  }

  async refresh(now: number): Promise<void> {
    const region = this.root.querySelector('#message-detail');
    try {
      region?.replaceChildren(detail(await api.show(this.id), now));
    } catch (err) {
      const gone = err instanceof ApiError && err.status === 404;
      region?.replaceChildren(el('p', { class: gone ? 'sub' : 'error' }, gone ? `Message ${this.id} is no longer in the queue.` : `message: ${(err as Error).message}`));
    }
  }
}

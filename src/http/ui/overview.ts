/// <reference lib="dom" />
/**
 * http/ui/overview — the front page: queue shape, queue-age histogram,
 * throughput chart, recent failures by bounce class, destinations, the
 * suppression list, and the message search with its results
 * (each with its actions). The layout is built once; a refresh only replaces
 * the data regions, so the search box, focus and scroll stay where the user
 * left them. The search lives in the URL (#/?q=…&state=…), so a reload or a
 * link keeps it. Each region fails alone: a missing endpoint says so there.
 */
import { describeReply, nextText } from '../../queue/describe.js';
import { actionButtons, flushAllButton } from './actions.js';
import { api, type QueueEntry } from './api.js';
import { ThroughputChart } from './chart.js';
import { destinationsTable } from './destinations.js';
import { failuresView } from './failures.js';
import { suppressionsTable } from './suppressions.js';
import { el, span, table } from './dom.js';
import { ageHistogram, shapeTable } from './shape.js';

export interface Search { readonly q: string; readonly state: string }
const STATES = ['', 'queued', 'deferred', 'inflight', 'held', 'failed', 'delivered', 'expired'];
const LIMIT = 200;
const SUPPRESSIONS_SHOWN = 100;

function region(id: string): HTMLElement {
  return el('div', { id, class: 'region' }, 'loading…');
}

function setRegion(root: HTMLElement, id: string, ...content: (Node | string)[]): void {
  root.querySelector(`#${id}`)?.replaceChildren(...content);
}

const unavailable = (what: string, err: unknown) => el('p', { class: 'error' }, `${what}: ${(err as Error).message}`);

function resultRows(list: readonly QueueEntry[], now: number): HTMLTableRowElement[] {
  return list.map((e) => el('tr', { 'data-id': e.message.id, class: e.message.held ? 'held' : undefined },
    el('td', {}, el('a', { href: `#/message/${encodeURIComponent(e.message.id)}`, class: 'msgid' }, e.message.id), e.message.held ? el('span', { class: 'badge' }, 'held') : null),
    el('td', { class: 'n' }, span(now - e.message.receivedAt)),
    el('td', { class: 'n' }, e.message.size),
    el('td', { class: 'addr' }, e.message.sender === '' ? '<>' : e.message.sender),
    el('td', {}, ...e.recipients.map((r) => el('div', { class: `rcpt state-${r.state}` },
      el('span', { class: 'state' }, r.state), ' ', el('span', { class: 'addr' }, r.address), nextText(r, now),
      r.lastReply ? el('div', { class: 'reply' }, describeReply(r.lastReply)) : null))),
    el('td', {}, actionButtons(e.message.id, e.message.held))));
}

export class Overview {
  readonly root: HTMLElement;
  private readonly chart = new ThroughputChart();
  private readonly q: HTMLInputElement;
  private readonly state: HTMLSelectElement;
  private search: Search;

  constructor(search: Search, private readonly onSearch: (s: Search) => void) {
    this.search = search;
    this.q = el('input', { type: 'search', id: 'q', name: 'q', placeholder: 'queue id, sender, recipient or Message-ID', value: search.q, size: 40 });
    this.state = el('select', { id: 'state', name: 'state' }, ...STATES.map((s) => el('option', { value: s }, s || 'any state')));
    this.state.value = search.state;
    const form = el('form', { id: 'search', role: 'search', onsubmit: (ev: Event) => {
      ev.preventDefault();
      this.onSearch({ q: this.q.value.trim(), state: this.state.value });
    } }, this.q, ' ', this.state, ' ', el('button', { type: 'submit' }, 'search'));
    this.root = el('div', { id: 'overview' },
      el('section', {}, el('h2', {}, 'Queue shape ', flushAllButton()), region('shape')),
      el('section', { class: 'pair' },
        el('div', {}, el('h2', {}, 'Queue age'), region('histogram')),
        el('div', {}, el('h2', {}, 'Throughput'), el('div', { id: 'throughput' }, this.chart.root))),
      el('section', {}, el('h2', {}, 'Recent failures by class'), region('failures')),
      el('section', {}, el('h2', {}, 'Destinations'), region('destinations')),
      el('section', {}, el('h2', {}, 'Suppression list'), region('suppressions')),
      el('section', {}, el('h2', {}, 'Messages'), form, region('results')));
  }

  /** A new search from the URL: the inputs follow it unless the user is typing in them. */
  setSearch(s: Search): void {
    this.search = s;
    if (document.activeElement !== this.q) this.q.value = s.q;
    this.state.value = s.state;
  }

  async refresh(now: number): Promise<void> {
    const s = this.search;
    const held = s.state === 'held';
    const [shape, tp, dests, waiting, found, failures, suppressed] = await Promise.allSettled([
      api.shape(), api.throughput(), api.destinations(), api.list({ state: 'deferred', limit: LIMIT }),
      api.list({ q: s.q || undefined, state: held ? undefined : s.state || undefined, limit: LIMIT }),
      api.failures(), api.suppressions(SUPPRESSIONS_SHOWN),
    ]);
    setRegion(this.root, 'suppressions', suppressed.status === 'fulfilled' ? suppressionsTable(suppressed.value, SUPPRESSIONS_SHOWN) : unavailable('suppression list', suppressed.reason));
    setRegion(this.root, 'failures', failures.status === 'fulfilled' ? failuresView(failures.value) : unavailable('recent failures', failures.reason));
    if (shape.status === 'fulfilled') {
      setRegion(this.root, 'shape', shapeTable(shape.value));
      setRegion(this.root, 'histogram', ageHistogram(shape.value));
    } else {
      setRegion(this.root, 'shape', unavailable('queue shape', shape.reason));
      setRegion(this.root, 'histogram', unavailable('queue age', shape.reason));
    }
    if (tp.status === 'fulfilled') this.chart.update(tp.value);
    else this.chart.root.replaceChildren(unavailable('throughput', tp.reason));
    setRegion(this.root, 'destinations', dests.status === 'fulfilled'
      ? destinationsTable(dests.value, waiting.status === 'fulfilled' ? waiting.value : [], now) : unavailable('destinations', dests.reason));
    if (found.status === 'rejected') return setRegion(this.root, 'results', unavailable('search', found.reason));
    const list = held ? found.value.filter((e) => e.message.held) : found.value;
    setRegion(this.root, 'results',
      el('p', { class: 'sub' }, `${list.length}${list.length >= LIMIT ? '+' : ''} message(s)${s.q ? ` matching “${s.q}”` : ''}${s.state ? ` in state ${s.state}` : ''}`),
      table(['queue id', 'age', 'size', 'sender', 'recipients', 'actions'], resultRows(list, now), 'no message matches'));
  }
}

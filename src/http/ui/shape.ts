/// <reference lib="dom" />
/**
 * http/ui/shape — the queue's shape (qshape: destinations × age buckets,
 * held counted apart) as a table, and the queue-age histogram drawn from its
 * total and held rows as plain bars (a div's width, set through the CSSOM,
 * which the page's CSP allows). Pure rendering of GET /api/queue/shape.
 */
import type { QueueShape, ShapeRow } from './api.js';
import { el, table } from './dom.js';

/** "5m", "10m", … "> 1280m" for the open last bucket. */
export function bucketLabels(shape: QueueShape): string[] {
  return shape.bucketsMinutes.map((b, i) => (b === null ? `> ${shape.bucketsMinutes[i - 1] ?? 0}m` : `≤ ${b}m`));
}

export function shapeTable(shape: QueueShape): HTMLTableElement {
  const labels = bucketLabels(shape);
  const row = (r: ShapeRow, cls?: string) => el('tr', { class: cls },
    el('th', { scope: 'row' }, r.key), el('td', { class: 'n' }, r.total), ...r.counts.map((n) => el('td', { class: n ? 'n' : 'n zero' }, n)));
  const rows = [row(shape.total, 'total'), ...shape.rows.map((r) => row(r)), row({ ...shape.held, key: 'held' }, 'held')];
  return table([shape.by, 'total', ...labels], rows);
}

/** One bar per age bucket: waiting recipients and held ones, each bar as wide as its share of the largest bucket. */
export function ageHistogram(shape: QueueShape): HTMLElement {
  const labels = bucketLabels(shape);
  const sums = labels.map((_, i) => (shape.total.counts[i] ?? 0) + (shape.held.counts[i] ?? 0));
  const max = Math.max(1, ...sums);
  const bar = (n: number, cls: string) => {
    const b = el('span', { class: `bar ${cls}`, title: `${n}` });
    b.style.width = `${(100 * n) / max}%`;
    return b;
  };
  return el('div', { class: 'histogram', role: 'list' }, ...labels.map((label, i) => {
    const waiting = shape.total.counts[i] ?? 0;
    const held = shape.held.counts[i] ?? 0;
    return el('div', { class: 'bucket', role: 'listitem', 'data-bucket': label },
      el('span', { class: 'label' }, label),
      el('span', { class: 'bars' }, bar(waiting, 'waiting'), bar(held, 'held')),
      el('span', { class: 'count' }, `${waiting}${held ? ` + ${held} held` : ''}`));
  }));
}

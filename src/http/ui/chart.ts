/// <reference lib="dom" />
/**
 * http/ui/chart — the throughput chart: sent, deferred and bounced
 * recipients per minute over the last hour (GET /api/stats/throughput, this
 * node's counts), drawn with uPlot (loaded by the page shell from
 * node_modules as a classic script; its types come from the package). The
 * chart is made once and given new data on each refresh, so a refresh does
 * not flicker or drop the cursor. Totals for the hour are written next to it
 * as text, the numbers a person (and the browser test) reads.
 */
import type uPlot from 'uplot';
import type { Throughput } from './api.js';
import { el } from './dom.js';

const SERIES = [
  { key: 'sent', label: 'sent', stroke: '#2e7d32' },
  { key: 'deferred', label: 'deferred', stroke: '#ef6c00' },
  { key: 'bounced', label: 'bounced', stroke: '#c62828' },
] as const;

export type Totals = Record<(typeof SERIES)[number]['key'], number>;

export function totals(t: Throughput): Totals {
  const sum = (k: keyof Totals) => t.minutes.reduce((n, m) => n + m[k], 0);
  return { sent: sum('sent'), deferred: sum('deferred'), bounced: sum('bounced') };
}

/** uPlot's columns: x in seconds (uPlot's unit), one array per series. */
function columns(t: Throughput): uPlot.AlignedData {
  return [t.minutes.map((m) => m.at / 1000), ...SERIES.map((s) => t.minutes.map((m) => m[s.key]))];
}

export class ThroughputChart {
  private plot: uPlot | undefined;
  readonly root: HTMLElement;
  private readonly sums: HTMLElement;
  private readonly holder: HTMLElement;

  constructor() {
    this.sums = el('p', { class: 'totals', id: 'throughput-totals' });
    this.holder = el('div', { class: 'chart' });
    this.root = el('div', {}, this.sums, this.holder);
  }

  update(t: Throughput): void {
    const sum = totals(t);
    this.sums.replaceChildren(el('span', {}, `last ${t.minutes.length} min on ${t.node}: `),
      ...SERIES.map((s) => el('span', { class: `total ${s.key}`, 'data-series': s.key }, `${s.label} ${sum[s.key]}`)));
    const data = columns(t);
    if (this.plot) return this.plot.setData(data);
    // The IIFE build defines the global; absent (blocked, failed to load), the totals above still say it.
    const UPlot = (globalThis as unknown as { uPlot?: typeof uPlot }).uPlot;
    if (!UPlot) return void this.holder.replaceChildren('chart library not loaded');
    this.plot = new UPlot({
      width: Math.max(320, Math.min(900, this.holder.clientWidth || 800)), height: 220,
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{}, { label: 'recipients / min' }],
      series: [{}, ...SERIES.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, points: { show: true } }))],
    }, data, this.holder);
  }
}

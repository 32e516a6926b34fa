/**
 * http/dashboard — the page at GET /: queue counts by state and the
 * destinations table, rendered on the server as plain HTML (no framework, no
 * script), refreshing itself every 10 s. Read-only: changes go through the
 * CLI or the API. Every value is HTML-escaped.
 */
import type { QueueCounts } from '../queue/store.js';
import type { DestinationInfo } from './admin.js';

const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderDashboard(opts: { hostname: string; counts: QueueCounts; destinations: readonly DestinationInfo[]; now: number }): string {
  const { counts, now } = opts;
  const states = Object.entries(counts.byState).map(([s, n]) => `<tr><td>${esc(s)}</td><td class=n>${esc(n)}</td></tr>`).join('');
  const dests = opts.destinations.map((d) => {
    const backoff = d.health === 'backoff' && d.backoffUntil > now ? `${Math.ceil((d.backoffUntil - now) / 1000)}s` : '';
    return `<tr><td>${esc(d.key)}</td><td>${esc(d.health)}</td><td class=n>${esc(d.queued)}</td><td class=n>${esc(d.connections)}</td>`
      + `<td class=n>${esc(d.consecutiveFailures)}</td><td>${esc(backoff)}</td><td>${esc(d.lastError ?? '')}</td></tr>`;
  }).join('');
  return `<!doctype html>
<html lang=en><head><meta charset=utf-8><meta http-equiv=refresh content=10>
<title>Halcyon — ${esc(opts.hostname)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.n{text-align:right}</style></head>
<body><h1>Halcyon on ${esc(opts.hostname)}</h1>
<p>${esc(new Date(now).toISOString())} · <a href="/">refresh</a> · <a href="/metrics">metrics</a> · <a href="/api/queue">queue (JSON)</a></p>
<h2>Queue: ${esc(counts.messages)} message(s)</h2>
<table><tr><th>state</th><th>recipients</th></tr>${states}</table>
<h2>Destinations</h2>
<table><tr><th>destination</th><th>health</th><th>queued</th><th>connections</th><th>failures</th><th>backoff left</th><th>last error</th></tr>${dests || '<tr><td colspan=7>none</td></tr>'}</table>
</body></html>
`;
}

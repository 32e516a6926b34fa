/**
 * cli/events-cmd — `halcyon events status`: each configured event sink with
 * the events waiting for it in the outbox (how many, how many being sent now,
 * the oldest's age, the most failed sends), read from the queue itself
 * (the SQLite file read-only, beside a running server, or the shared
 * PostgreSQL database: every node's outbox at once). Rows under a name no sink
 * has any more are listed too: they will not be sent.
 */
import { eventSinks } from '../config/event-sinks.js';
import { configFileFrom, loadConfig } from '../config/load.js';
import type { OutboxDepth } from '../queue/event-outbox.js';
import { withDirectQueue } from './direct-queue.js';
import { age } from './format.js';

export interface SinkStatus extends OutboxDepth {
  readonly kind: 'webhook' | 'amqp' | 'unconfigured';
  readonly target?: string;
}

export function formatEventStatus(rows: readonly SinkStatus[], now: number): string {
  if (rows.length === 0) return 'no event sinks configured and no events waiting\n';
  const lines = [['SINK', 'KIND', 'WAITING', 'SENDING', 'OLDEST', 'MAX TRIES', 'TARGET']];
  for (const r of rows) {
    lines.push([r.sink, r.kind, String(r.depth), String(r.leased), r.oldestAt !== undefined ? age(now - r.oldestAt) : '-', String(r.maxAttempts), r.target ?? '']);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** `halcyon events status`. */
export async function eventsStatus(opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig(configFileFrom(opts.config));
  const depth = await withDirectQueue(cfg, 'readonly', (q) => q.events.outboxDepth());
  if (depth === undefined) return;
  const byName = new Map(depth.map((d) => [d.sink, d]));
  const rows: SinkStatus[] = eventSinks(cfg).map((s) => ({
    sink: s.name, depth: 0, leased: 0, maxAttempts: 0, ...byName.get(s.name),
    kind: s.kind, target: s.kind === 'webhook' ? s.url : `${s.url.replace(/\/\/[^@/]*@/, '//')} ${s.exchange || '(default exchange)'}`,
  }));
  const named = new Set(rows.map((r) => r.sink));
  for (const d of depth) if (!named.has(d.sink)) rows.push({ ...d, kind: 'unconfigured' });
  process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : formatEventStatus(rows, Date.now()));
}

/**
 * bench/cost-counters — a bench-only preload for Halcyon's node
 * (`--import …/dist/bench/cost-counters.js`, set by bench/queue-cost) that
 * counts what a message costs in calls the machine's load does not distort:
 *
 * - every query the pg driver sends (`pg.Client.prototype.query`), by the
 *   statement's opening words — with the pg driver, one query is one round
 *   trip to the server (it does not pipeline);
 * - every request the main thread posts to the SQLite queue thread
 *   (`Worker.prototype.postMessage`), by its `op`, and the postMessage calls
 *   (one may carry the requests of a whole event-loop turn);
 * - the process's CPU (`process.cpuUsage`, every thread).
 *
 * On SIGUSR2 it writes a snapshot of the counters, as JSON, to the file
 * HALCYON_COST_FILE names (synchronously, replacing it); the caller diffs two
 * snapshots around a load. Loaded only by the bench; changes nothing else.
 */
import { writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import pg from 'pg';

export interface CostSnapshot {
  readonly pg: Record<string, number>;
  /** Requests to the queue thread, by op (a postMessage may carry several). */
  readonly posts: Record<string, number>;
  /** postMessage calls from the main thread to the queue thread. */
  readonly messages: number;
  /** User + system CPU microseconds of the whole process. */
  readonly cpuUs: number;
}

const pgCounts: Record<string, number> = {};
const postCounts: Record<string, number> = {};
let messages = 0;

/** A statement's kind: its first words and the table it names, e.g. "UPDATE recipients", "WITH c AS … UPDATE recipients". */
export function statementKind(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  const m = /^(WITH \w+ AS \(SELECT|SELECT|INSERT INTO|UPDATE|DELETE FROM|BEGIN|COMMIT|ROLLBACK)\b\s*(\w+)?/i.exec(s);
  if (!m) return s.slice(0, 40);
  if (/^(BEGIN|COMMIT|ROLLBACK)$/i.test(m[1]!)) return m[1]!.toUpperCase();
  const table = /^SELECT/i.test(m[1]!) ? (/\bFROM (\w+)/i.exec(s)?.[1] ?? m[2] ?? '') : (m[2] ?? '');
  const tail = /^WITH/i.test(m[1]!) ? ` … ${/\)\s*(UPDATE|DELETE FROM|INSERT INTO) (\w+)/i.exec(s)?.slice(1).join(' ') ?? ''}` : '';
  return `${m[1]!.toUpperCase()} ${table}${tail}`.trim();
}

const file = process.env.HALCYON_COST_FILE;
if (file) {
  type Query = (this: pg.Client, ...args: unknown[]) => unknown;
  const proto = pg.Client.prototype as unknown as { query: Query };
  const query = proto.query;
  proto.query = function (this: pg.Client, ...args: unknown[]): unknown {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text ?? '?';
    const k = statementKind(text);
    pgCounts[k] = (pgCounts[k] ?? 0) + 1;
    return query.apply(this, args);
  };
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (this: Worker, value: unknown, transfer?: readonly Transferable[]): void {
    messages++;
    for (const req of Array.isArray(value) ? value : [value]) {
      const op = (req as { op?: unknown } | null)?.op;
      const k = typeof op === 'string' ? op : 'other';
      postCounts[k] = (postCounts[k] ?? 0) + 1;
    }
    // transferList typed loosely across Node versions; passed through as given.
    post.call(this, value, transfer as Parameters<typeof post>[1]);
  };
  process.on('SIGUSR2', () => {
    const u = process.cpuUsage();
    const snap: CostSnapshot = { pg: { ...pgCounts }, posts: { ...postCounts }, messages, cpuUs: u.user + u.system };
    writeFileSync(file, JSON.stringify(snap));
  });
}

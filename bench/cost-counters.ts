/**
 * bench/cost-counters — a bench-only preload for Halcyon's node
 * (`--import …/dist/bench/cost-counters.js`, set by bench/queue-cost) that
 * counts what a message costs in calls the machine's load does not distort:
 *
 * - every query the pg driver sends (`pg.Client.prototype.query`), by the
 *   statement's opening words, and how many of them were pipelined (sent
 *   while the same client still waited for an earlier answer: the queue's
 *   clients pipeline, so those cost no round trip of their own);
 * - every request the main thread posts to the SQLite queue thread
 *   (`Worker.prototype.postMessage`), by its `op`, and the postMessage calls
 *   (one may carry the requests of a whole event-loop turn);
 * - the process's CPU (`process.cpuUsage`, every thread);
 * - with HALCYON_COST_ASYNC=1, the promises and other async resources the
 *   main thread creates (async_hooks `init`, by type; it slows the process).
 *
 * On SIGUSR2 it writes a snapshot of the counters, as JSON, to the file
 * HALCYON_COST_FILE names (synchronously, replacing it); the caller diffs two
 * snapshots around a load. Loaded only by the bench; changes nothing else.
 */
import { writeFileSync } from 'node:fs';
import { createHook } from 'node:async_hooks';
import { isMainThread, Worker } from 'node:worker_threads';
import pg from 'pg';

export interface CostSnapshot {
  readonly pg: Record<string, number>;
  /** Queries sent while their client still waited for an earlier answer (no round trip of their own). */
  readonly pipelined?: number;
  /** Requests to the queue thread, by op (a postMessage may carry several). */
  readonly posts: Record<string, number>;
  /** postMessage calls from the main thread to the queue thread. */
  readonly messages: number;
  /** With HALCYON_COST_ASYNC=1: async resources the main thread created, by type (PROMISE, TCPWRAP, Immediate…). */
  readonly async?: Record<string, number>;
  /** User + system CPU microseconds of the whole process. */
  readonly cpuUs: number;
}

const pgCounts: Record<string, number> = {};
let pipelined = 0;
const postCounts: Record<string, number> = {};
let messages = 0;
const asyncCounts: Record<string, number> = {};

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
    // The driver's own queues (not in its types): a query behind one still unanswered goes without a round trip.
    const q = this as unknown as { _activeQuery?: unknown; _queryQueue?: unknown[]; _sentQueryQueue?: unknown[] };
    if (q._activeQuery || (q._queryQueue?.length ?? 0) > 0 || (q._sentQueryQueue?.length ?? 0) > 0) pipelined++;
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
  // Every promise and other async resource the main thread creates (slows it: for counts only, not CPU).
  if (process.env.HALCYON_COST_ASYNC === '1' && isMainThread) {
    createHook({ init: (_id, type) => { asyncCounts[type] = (asyncCounts[type] ?? 0) + 1; } }).enable();
  }
  process.on('SIGUSR2', () => {
    const u = process.cpuUsage();
    const snap: CostSnapshot = { pg: { ...pgCounts }, pipelined, posts: { ...postCounts }, messages, async: { ...asyncCounts }, cpuUs: u.user + u.system };
    writeFileSync(file, JSON.stringify(snap));
  });
}

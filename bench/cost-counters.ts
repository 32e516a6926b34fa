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
 *   main thread creates (async_hooks `init`, by type; it slows the process);
 *   with HALCYON_COST_ASYNC_SITES=1 as well, also where: every 16th one's stack, by its
 *   type and the first two frames of Halcyon's own code (`asyncSites`, × 16);
 * - with HALCYON_COST_PROFILE=DIR, a V8 CPU profile of each thread (main and
 *   queue thread) over the window between two snapshots: the first SIGUSR2
 *   starts the profilers (node:inspector, in-process), the second stops them
 *   and writes DIR/<thread>-<n>.cpuprofile — so the warm-up is not in it.
 *
 * On SIGUSR2 it writes a snapshot of the counters, as JSON, to the file
 * HALCYON_COST_FILE names (synchronously, replacing it); the caller diffs two
 * snapshots around a load. Loaded only by the bench; changes nothing else.
 */
import { writeFileSync } from 'node:fs';
import { createHook } from 'node:async_hooks';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { BroadcastChannel, isMainThread, threadId, Worker } from 'node:worker_threads';
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
  /** With HALCYON_COST_ASYNC=sites: async resources by "TYPE site ← caller" (Halcyon's frames), sampled 1 in 16 and scaled. */
  readonly asyncSites?: Record<string, number>;
  /** User + system CPU microseconds of the whole process. */
  readonly cpuUs: number;
}

const pgCounts: Record<string, number> = {};
let pipelined = 0;
const postCounts: Record<string, number> = {};
let messages = 0;
const asyncCounts: Record<string, number> = {};
const asyncSites: Record<string, number> = {};
let asyncSeen = 0;

/** "TYPE fn file:line ← fn file:line": the first two frames of Halcyon's code (dist/src) on the current stack. */
function siteOf(type: string): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  const ours = stack.split('\n').filter((l) => l.includes('/dist/src/')).slice(0, 2)
    .map((l) => l.trim().replace(/^at /, '').replace(/\(?file:\/\/\S*\/dist\/src\//, '').replace(/:\d+\)?$/, ''));
  return `${type} ${ours.length > 0 ? ours.join(' ← ') : '(node internals only)'}`;
}

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
    const sites = process.env.HALCYON_COST_ASYNC_SITES === '1';
    createHook({
      init: (_id, type) => {
        asyncCounts[type] = (asyncCounts[type] ?? 0) + 1;
        if (sites && ++asyncSeen % 16 === 0) {
          const k = siteOf(type);
          asyncSites[k] = (asyncSites[k] ?? 0) + 16;
        }
      },
    }).enable();
  }
  process.on('SIGUSR2', () => {
    profileToggle?.postMessage('toggle');
    toggleProfile();
    const u = process.cpuUsage();
    const snap: CostSnapshot = { pg: { ...pgCounts }, pipelined, posts: { ...postCounts }, messages, async: { ...asyncCounts }, asyncSites: { ...asyncSites }, cpuUs: u.user + u.system };
    writeFileSync(file, JSON.stringify(snap));
  });
}

/**
 * HALCYON_COST_PROFILE=DIR: each thread toggles its own in-process profiler at each snapshot (the main thread hears
 * the signal and tells the others on a BroadcastChannel; signals reach only the main thread).
 */
const profileDir = process.env.HALCYON_COST_PROFILE;
const profileToggle = profileDir ? new BroadcastChannel('halcyon-cost-profile') : undefined;
let profiling: Session | undefined;
let profiles = 0;
function toggleProfile(): void {
  if (!profileDir) return;
  if (!profiling) {
    const s = new Session();
    s.connect();
    s.post('Profiler.enable', () => s.post('Profiler.setSamplingInterval', { interval: 200 }, () => s.post('Profiler.start')));
    profiling = s;
    return;
  }
  const s = profiling;
  profiling = undefined;
  s.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(join(profileDir, `${isMainThread ? 'main' : `thread${threadId}`}-${++profiles}.cpuprofile`), JSON.stringify(res.profile));
    s.disconnect();
  });
}
if (profileToggle) {
  profileToggle.unref();
  if (!isMainThread) profileToggle.onmessage = () => toggleProfile();
}

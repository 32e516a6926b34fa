/**
 * queue/sqlite/store-worker — the worker thread that owns the SQLite queue when the
 * server runs (queue/sqlite/worker-store is its other half; queue/sqlite/worker-protocol
 * the messages between them).
 *
 * Why a thread: better-sqlite3 is synchronous, and every commit waits for an
 * fsync. On the main thread each fsync would stop every SMTP session for its
 * duration. Here it stops only this thread, and the requests that arrive
 * meanwhile are all applied in the NEXT transaction: every request received
 * in one turn of this thread's event loop runs inside one outer transaction
 * (each write in its own savepoint, so one failing write does not undo the
 * others), and all their answers are posted only after that transaction
 * committed. One fsync thus covers many enqueues, claims, slots and outcomes
 * — group commit for everything, which is what makes `250` cheap and still
 * durable.
 *
 * Requests come over the parent's port and over the ports attached to it
 * (`attach`: one per SMTP session worker, app/session-workers); a turn takes
 * them all, and each port gets its own answers. The requests' handlers are
 * queue/handlers' table.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { HalcyonError } from '../../errors.js';
import { openSqliteQueue } from './store.js';
import type { EventRoutes } from '../event.js';
import { dispatch, queueHandlers } from '../handlers.js';
import { ownsMemory } from './worker-store.js';
import { isAttach, isList, type QueueAttach, type QueueRequest, type QueueRequests, type QueueResponse, type QueueResponses } from './worker-protocol.js';

const parent = parentPort;
if (!parent) throw new Error('store-worker must run in a worker thread');
const { dataDir, events } = workerData as { dataDir: string; events?: EventRoutes };

let now = Date.now();
const queue = await openSqliteQueue({ dataDir, clock: () => now, ...(events ? { events } : {}) });
const handlers = queueHandlers(queue, async () => undefined); // closed after the turn's answers are out

/** The SQLite result code (SQLITE_CORRUPT, SQLITE_FULL…) at the root of an error, if any. */
function sqliteCodeOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) return code;
  }
  return undefined;
}

const errorOf = (err: unknown) => ({
  code: err instanceof HalcyonError ? err.code : (err as { code?: string }).code,
  message: err instanceof Error ? err.message : String(err),
  detail: err instanceof HalcyonError ? err.detail : undefined,
  sqlite: sqliteCodeOf(err),
});

/** Where an answer goes: the parent's port, or the port of the session worker that asked (app/session-workers). */
type ReplyPort = Pick<MessagePort, 'postMessage'>;

let pending: QueueRequest[] = [];
let replyTo: ReplyPort[] = [];
let scheduled = false;

/** Requests from every port of one turn share its transaction (and its one fsync). */
function listen(port: ReplyPort & Pick<MessagePort, 'on'>): void {
  port.on('message', (msg: QueueRequests | QueueAttach) => {
    if (isAttach(msg)) return listen(msg.attach);
    for (const req of isList(msg) ? msg : [msg]) {
      pending.push(req);
      replyTo.push(port);
    }
    if (!scheduled) {
      scheduled = true;
      setImmediate(runTurn);
    }
  });
}
listen(parent);

/** Posts each port's answers of the turn in one message, moving the buffers listed for them. */
function answer(reqs: readonly QueueRequest[], to: readonly ReplyPort[], answers: readonly QueueResponse[], moved: ReadonlyMap<number, readonly ArrayBuffer[]>): void {
  const byPort = new Map<ReplyPort, { answers: QueueResponse[]; moved: Set<ArrayBuffer> }>();
  reqs.forEach((_, i) => {
    let out = byPort.get(to[i]!);
    if (!out) byPort.set(to[i]!, out = { answers: [], moved: new Set() });
    out.answers.push(answers[i]!);
    for (const b of moved.get(i) ?? []) out.moved.add(b);
  });
  for (const [port, out] of byPort) port.postMessage(out.answers.length === 1 ? out.answers[0] : out.answers satisfies QueueResponses, [...out.moved]);
}

/** The memory of a body read for this answer alone (getBody's, getForDelivery's), to move rather than copy. */
function movable(op: QueueRequest['op'], value: unknown): ArrayBuffer[] {
  const body = op === 'getBody' ? value : op === 'getForDelivery' ? (value as { body?: unknown } | undefined)?.body : undefined;
  return body instanceof Uint8Array && ownsMemory(body) ? [body.buffer] : [];
}

function runTurn(): void {
  scheduled = false;
  const reqs = pending;
  const to = replyTo;
  pending = [];
  replyTo = [];
  if (reqs.length === 1 && reqs[0]!.op === 'close') return void close(reqs[0]!, to[0]!);
  const calls: Promise<unknown>[] = [];
  try {
    queue.turn(() => {
      for (const req of reqs) {
        now = req.now;
        calls.push(dispatch(handlers, req));
      }
    });
  } catch (err) {
    // The commit itself failed (disk full, I/O error, a damaged file): nothing of this turn is durable.
    // Each request hears its own failure when it had one (SQLITE_CORRUPT from its read rather than the
    // "no transaction is active" of the commit SQLite already rolled back), else the commit's. Consuming
    // every call's rejection here also keeps it from killing this thread as an unhandled rejection.
    const error = errorOf(err);
    void Promise.allSettled(calls).then((results) => {
      answer(reqs, to, reqs.map((req, i): QueueResponse => {
        const own = results[i]?.status === 'rejected' ? errorOf((results[i] as PromiseRejectedResult).reason) : undefined;
        return { id: req.id, ok: false, error: own?.sqlite ? own : error };
      }), new Map());
      // A close that came with this turn still closes: the caller's stop must not wait for an answer that never comes.
      if (reqs.some((x) => x.op === 'close')) void close(undefined);
    });
    return;
  }
  void Promise.allSettled(calls).then((results) => {
    // Every answer of the turn in one message; a body read for its answer alone (a spool read, a fresh SQLite
    // blob) is moved, not copied (each buffer listed once: two answers may hold the same one).
    const moved = new Map<number, ArrayBuffer[]>();
    const answers = results.map((res, i): QueueResponse => {
      const id = reqs[i]!.id;
      if (res.status === 'rejected') return { id, ok: false, error: errorOf(res.reason) };
      moved.set(i, movable(reqs[i]!.op, res.value));
      return { id, ok: true, result: res.value };
    });
    answer(reqs, to, answers, moved);
    if (reqs.some((x) => x.op === 'close')) void close(undefined);
  });
}

async function close(req: QueueRequest | undefined, to?: ReplyPort): Promise<void> {
  await queue.close().catch(() => undefined); // a damaged file may refuse even this; the thread ends anyway
  if (req) to?.postMessage({ id: req.id, ok: true, result: undefined } satisfies QueueResponse);
  parent!.close();
}

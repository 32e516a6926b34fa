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
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HalcyonError } from '../../errors.js';
import type { NewMessage } from '../model.js';
import { openSqliteQueue } from './store.js';
import type { EventRoutes } from '../event.js';
import { ownsMemory } from './worker-store.js';
import { isList, type QueueHandlers, type QueueRequest, type QueueRequests, type QueueResponse, type QueueResponses } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('store-worker must run in a worker thread');
const { dataDir, events } = workerData as { dataDir: string; events?: EventRoutes };

let now = Date.now();
const queue = await openSqliteQueue({ dataDir, clock: () => now, ...(events ? { events } : {}) });
const { messages: m, recipients: r, gate: g, events: e, verifications: v, tlsReports: t, suppressions: s, idempotency: k } = queue;

/** Structured clone turns Buffers into Uint8Arrays; the store wants Buffers back. */
function revive(msg: NewMessage): NewMessage {
  const body = msg.body as Uint8Array;
  return { ...msg, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
}

/** One entry per op of the protocol; the compiler checks that none is missing and every type matches. */
const handlers: QueueHandlers = {
  enqueue: (msg) => m.enqueue(revive(msg)),
  enqueueGroup: (msgs, key) => m.enqueueGroup(msgs.map(revive), key),
  getMessage: (id) => m.getMessage(id),
  getBody: (id) => m.getBody(id),
  getForDelivery: (id) => m.getForDelivery(id),
  deleteMessages: (ids) => m.deleteMessages(ids),
  getRecipients: (id) => r.getRecipients(id),
  getAttempts: (id) => r.getAttempts(id),
  listMessages: (filter) => r.listMessages(filter),
  counts: () => r.counts(),
  shapeCounts: (at, bounds) => r.shapeCounts(at, bounds),
  senderShapeCounts: (at, bounds) => r.senderShapeCounts(at, bounds),
  tenantCounts: () => r.tenantCounts(),
  claimDue: (req) => r.claimDue(req),
  renewLeases: (ids, owner, until) => r.renewLeases(ids, owner, until),
  unclaim: (ids, owner, next) => r.unclaim(ids, owner, next),
  releaseExpiredLeases: (at) => r.releaseExpiredLeases(at),
  releaseNodeLeases: (owner, at) => r.releaseNodeLeases(owner, at),
  recordOutcomes: (outcomes, at, owner) => r.recordOutcomes(outcomes, at, owner),
  nextDueAt: () => r.nextDueAt(),
  parkDestination: (key, until, limit) => r.parkDestination(key, until, limit),
  flush: (opts) => r.flush(opts),
  setHeld: (id, held) => r.setHeld(id, held),
  claimWaiting: (id, c) => r.claimWaiting(id, c),
  claimExpirable: (before, c) => r.claimExpirable(before, c),
  claimDelayed: (before, c) => r.claimDelayed(before, c),
  claimReportsDue: (c) => r.claimReportsDue(c),
  markDsn: (ids, what) => r.markDsn(ids, what),
  removeCompleted: (limit) => r.removeCompleted(limit),
  acquire: (req) => g.acquire(req),
  renewSlot: (slot, until) => g.renewSlot(slot, until),
  releaseSlot: (slot) => g.releaseSlot(slot),
  releaseNodeSlots: (node) => g.releaseNodeSlots(node),
  releaseExpiredSlots: (at) => g.releaseExpiredSlots(at),
  transition: (key, expected, next) => g.transition(key, expected, next),
  takeToken: (key, at, rate) => g.takeToken(key, at, rate),
  getDestination: (key) => g.getDestination(key),
  listRows: (prefix) => g.listRows(prefix),
  listDestinations: () => g.listDestinations(),
  putDestination: (row) => g.putDestination(row),
  putLimits: (key, limits, at) => g.putLimits(key, limits, at),
  claimEvents: (sink, claim) => e.claimEvents(sink, claim),
  suppress: (entries) => s.suppress(entries),
  suppressed: (addresses, now) => s.suppressed(addresses, now),
  unsuppress: (addresses) => s.unsuppress(addresses),
  listSuppressions: (f) => s.listSuppressions(f),
  purgeSuppressions: (now) => s.purgeSuppressions(now),
  getIdempotency: (token, key, since) => k.getIdempotency(token, key, since),
  expireIdempotency: (before, limit) => k.expireIdempotency(before, limit),
  ackEvents: (ids) => e.ackEvents(ids),
  retryEvents: (ids, owner, next) => e.retryEvents(ids, owner, next),
  outboxDepth: () => e.outboxDepth(),
  getVerification: (address, at) => v.getVerification(address, at),
  putVerification: (entry) => v.putVerification(entry),
  deleteVerification: (address) => v.deleteVerification(address),
  listVerifications: (at, limit) => v.listVerifications(at, limit),
  removeExpiredVerifications: (at, limit) => v.removeExpiredVerifications(at, limit),
  countTlsSessions: (counts) => t.countTlsSessions(counts),
  claimTlsReports: (claim) => t.claimTlsReports(claim),
  finishTlsReport: (day, domain) => t.finishTlsReport(day, domain),
  retryTlsReport: (day, domain, owner, next) => t.retryTlsReport(day, domain, owner, next),
  tlsSessionCounts: (day) => t.tlsSessionCounts(day),
  close: async () => undefined, // closed after the turn's answers are out
};

/** Runs one request: the synchronous part (the SQL) now, inside the caller's transaction. */
function dispatch(req: QueueRequest): Promise<unknown> {
  // TypeScript cannot relate req.op to req.args across the union; the table's own type guarantees the pairing.
  const handler = handlers[req.op] as (...args: readonly unknown[]) => Promise<unknown>;
  return handler(...req.args);
}

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

let pending: QueueRequest[] = [];
let scheduled = false;

port.on('message', (msg: QueueRequests) => {
  if (isList(msg)) pending.push(...msg);
  else pending.push(msg);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runTurn);
  }
});

/** The memory of a body read for this answer alone (getBody's, getForDelivery's), to move rather than copy. */
function movable(op: QueueRequest['op'], value: unknown): ArrayBuffer[] {
  const body = op === 'getBody' ? value : op === 'getForDelivery' ? (value as { body?: unknown } | undefined)?.body : undefined;
  return body instanceof Uint8Array && ownsMemory(body) ? [body.buffer] : [];
}

function runTurn(): void {
  scheduled = false;
  const reqs = pending;
  pending = [];
  if (reqs.length === 1 && reqs[0]!.op === 'close') return void close(reqs[0]!);
  const calls: Promise<unknown>[] = [];
  try {
    queue.turn(() => {
      for (const req of reqs) {
        now = req.now;
        calls.push(dispatch(req));
      }
    });
  } catch (err) {
    // The commit itself failed (disk full, I/O error, a damaged file): nothing of this turn is durable.
    // Each request hears its own failure when it had one (SQLITE_CORRUPT from its read rather than the
    // "no transaction is active" of the commit SQLite already rolled back), else the commit's. Consuming
    // every call's rejection here also keeps it from killing this thread as an unhandled rejection.
    const error = errorOf(err);
    void Promise.allSettled(calls).then((results) => {
      port!.postMessage(reqs.map((req, i): QueueResponse => {
        const own = results[i]?.status === 'rejected' ? errorOf((results[i] as PromiseRejectedResult).reason) : undefined;
        return { id: req.id, ok: false, error: own?.sqlite ? own : error };
      }) satisfies QueueResponses);
      // A close that came with this turn still closes: the caller's stop must not wait for an answer that never comes.
      if (reqs.some((x) => x.op === 'close')) void close(undefined);
    });
    return;
  }
  void Promise.allSettled(calls).then((results) => {
    // Every answer of the turn in one message; a body read for its answer alone (a spool read, a fresh SQLite
    // blob) is moved, not copied (each buffer listed once: two answers may hold the same one).
    const moved = new Set<ArrayBuffer>();
    const answers = results.map((res, i): QueueResponse => {
      const id = reqs[i]!.id;
      if (res.status === 'rejected') return { id, ok: false, error: errorOf(res.reason) };
      for (const b of movable(reqs[i]!.op, res.value)) moved.add(b);
      return { id, ok: true, result: res.value };
    });
    port!.postMessage(answers.length === 1 ? answers[0] : answers satisfies QueueResponses, [...moved]);
    if (reqs.some((x) => x.op === 'close')) void close(undefined);
  });
}

async function close(req: QueueRequest | undefined): Promise<void> {
  await queue.close().catch(() => undefined); // a damaged file may refuse even this; the thread ends anyway
  if (req) port!.postMessage({ id: req.id, ok: true, result: undefined } satisfies QueueResponse);
  port!.close();
}

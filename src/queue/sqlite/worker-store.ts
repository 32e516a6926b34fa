/**
 * queue/sqlite/worker-store — the Queue the server uses: the SQLite queue running in
 * a worker thread (queue/sqlite/store-worker), so commits and their fsyncs never
 * block SMTP sessions, and every request that arrives during a commit shares
 * the next one (group commit across enqueues, claims, slots and outcomes).
 * Requests are queue/sqlite/worker-protocol's typed union.
 *
 * Same contracts as MessageStore, RecipientQueue and DestinationGate: a
 * resolved promise means committed. Message ids are made here, on the
 * caller's thread, because `newId()` is synchronous. CLI commands open the
 * SQLite queue directly instead.
 *
 * Every call settles. A storage error that is not about space (SQLITE_CORRUPT,
 * SQLITE_IOERR, SQLITE_NOTADB…), a queue thread that dies, or a call left
 * unanswered for `callTimeoutMs` rejects with HAL_ERR_QUEUE_FAILED (451 4.3.0)
 * and marks the queue failed (`health`: queue/health) until restart. Once the
 * thread is gone or stuck, every call — waiting or later — is rejected at once.
 * A full disk stays HAL_ERR_QUEUE_WRITE (452 4.3.1) and fails nothing.
 *
 * The same client runs in an SMTP session worker (app/session-workers) over
 * a MessagePort: to the queue thread itself (SQLite, `attach`) or to the
 * main thread serving the PostgreSQL queue (queue/port-server). Closing it
 * then closes the port, never the queue.
 */
import { Worker, type MessagePort } from 'node:worker_threads';
import { HalcyonError, type ErrorCode } from '../../errors.js';
import type { DestinationGate } from '../destination-gate.js';
import { QueueHealth } from '../health.js';
import { createIdGenerator } from '../ids.js';
import type { MessageStore } from '../message-store.js';
import type { RecipientQueue } from '../recipient-queue.js';
import type { Queue } from '../store.js';
import type { EventRoutes } from '../event.js';
import type { SuppressionList } from '../suppression.js';
import type { IdempotencyStore } from '../idempotency.js';
import type { EventOutbox } from '../event-outbox.js';
import type { VerifyCache } from '../verify-cache.js';
import type { TlsReportStore } from '../tls-reports.js';
import { isList, type QueueAttach, type QueueOp, type QueueOps, type QueueRequest, type QueueResponse, type QueueResponses } from './worker-protocol.js';

/** SQLite result codes that mean the file or the I/O under it is broken, not that space ran out. */
const BROKEN = /^SQLITE_(CORRUPT|NOTADB|IOERR|CANTOPEN|PROTOCOL|FORMAT|READONLY)/;

/** How long a call may wait for the queue thread before the queue counts as failed. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/**
 * A Buffer that is the whole of its ArrayBuffer (not a slice of Node's shared pool, nor of a bigger
 * read): moving it moves exactly its bytes and takes nothing from anyone else.
 */
export function ownsMemory(b: Uint8Array): b is Uint8Array & { buffer: ArrayBuffer } {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer && b.byteLength > 0;
}

/** The other end of the requests: the queue thread itself, or a port to whoever serves them. */
interface Endpoint {
  postMessage(msg: unknown, transfer: readonly ArrayBuffer[]): void;
  /** Ends this side: the queue thread is closed through its own `close` op first; a port is only closed. */
  end(): Promise<void>;
  /** A port is not the queue: closing this client must not close the queue. */
  readonly ownsQueue: boolean;
}

export class WorkerQueue implements Queue {
  readonly messages: MessageStore;
  readonly recipients: RecipientQueue;
  readonly gate: DestinationGate;
  readonly events: EventOutbox;
  readonly verifications: VerifyCache;
  readonly tlsReports: TlsReportStore;
  readonly suppressions: SuppressionList;
  readonly idempotency: IdempotencyStore;
  /** Failed (for good) once the storage breaks; SQLite on a local disk is never merely unavailable. */
  readonly health = new QueueHealth();
  private readonly waiting = new Map<number, { op: QueueOp; timer: NodeJS.Timeout; resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private seq = 0;
  private closed = false;
  /** Set when the thread is gone or stuck: every call is then refused at once. */
  private dead: HalcyonError | undefined;
  /** Requests of this event-loop turn not posted yet, and the buffers they move (see send). */
  private outbox: { readonly req: QueueRequest; readonly transfer: readonly ArrayBuffer[] }[] | undefined;

  private readonly end: Endpoint;

  private constructor(other: Worker | MessagePort, private readonly clock: () => number, private readonly callTimeoutMs: number) {
    const nextId = createIdGenerator(clock);
    other.on('message', (msg: QueueResponses) => {
      if (isList(msg)) for (const res of msg) this.answer(res);
      else this.answer(msg);
    });
    if (other instanceof Worker) {
      this.worker = other;
      other.on('error', (err) => this.die(new HalcyonError('HAL_ERR_QUEUE_FAILED', `queue thread failed: ${err.message}`, { cause: err })));
      other.on('exit', (code) => this.die(new HalcyonError('HAL_ERR_QUEUE_FAILED', `queue thread exited (code ${code})`)));
      this.end = { postMessage: (m, t) => other.postMessage(m, [...t]), end: async () => void await other.terminate().catch(() => 0), ownsQueue: true };
    } else {
      other.on('close', () => this.die(new HalcyonError('HAL_ERR_QUEUE_FAILED', 'the port to the queue closed')));
      this.end = { postMessage: (m, t) => other.postMessage(m, [...t]), end: async () => other.close(), ownsQueue: false };
    }
    const call = this.call.bind(this);
    this.messages = {
      newId: () => nextId(),
      enqueue: (msg, opts) => {
        // The body is always moved to the queue thread: handed over and the whole of its memory, as it
        // is; else an exact copy. A structured clone would copy it twice, and a small body's whole 8 KiB
        // Buffer pool with it.
        const body = opts?.handOver && ownsMemory(msg.body) ? msg.body : Buffer.from(new Uint8Array(msg.body).buffer);
        const m = { ...msg, id: msg.id ?? nextId(), body };
        return body.byteLength > 0 ? this.callMoving([body.buffer], 'enqueue', m) : call('enqueue', m);
      },
      enqueueGroup: (msgs, key, opts) => {
        // As enqueue: each body moved (handed over and owning its memory) or copied exactly once; ids made here.
        const ms = msgs.map((msg) => ({ ...msg, id: msg.id ?? nextId(), body: opts?.handOver && ownsMemory(msg.body) ? msg.body : Buffer.from(new Uint8Array(msg.body).buffer) }));
        const moving = [...new Set(ms.filter((m) => m.body.byteLength > 0).map((m) => m.body.buffer as ArrayBuffer))];
        return this.callMoving(moving, 'enqueueGroup', ms, key);
      },
      getMessage: (id) => call('getMessage', id),
      async getBody(id) {
        const u8: Uint8Array = await call('getBody', id);
        return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
      },
      async getForDelivery(id) {
        const got = await call('getForDelivery', id);
        if (!got) return undefined;
        const u8: Uint8Array = got.body;
        return { message: got.message, body: Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength) };
      },
      deleteMessages: (ids) => call('deleteMessages', ids),
    };
    this.recipients = {
      getRecipients: (id) => call('getRecipients', id),
      getAttempts: (id) => call('getAttempts', id),
      listMessages: (filter) => call('listMessages', filter),
      counts: () => call('counts'),
      shapeCounts: (now, bounds) => call('shapeCounts', now, bounds),
      senderShapeCounts: (now, bounds) => call('senderShapeCounts', now, bounds),
      tenantCounts: () => call('tenantCounts'),
      claimDue: (req) => call('claimDue', req),
      renewLeases: (ids, owner, until) => call('renewLeases', ids, owner, until),
      unclaim: (ids, owner, next) => call('unclaim', ids, owner, next),
      releaseExpiredLeases: (now) => call('releaseExpiredLeases', now),
      releaseNodeLeases: (owner, now) => call('releaseNodeLeases', owner, now),
      recordOutcomes: (outcomes, now, owner) => call('recordOutcomes', outcomes, now, owner),
      nextDueAt: () => call('nextDueAt'),
      parkDestination: (key, until, limit) => call('parkDestination', key, until, limit),
      flush: (opts) => call('flush', opts),
      setHeld: (id, held) => call('setHeld', id, held),
      claimWaiting: (id, c) => call('claimWaiting', id, c),
      claimExpirable: (before, c) => call('claimExpirable', before, c),
      claimDelayed: (before, c) => call('claimDelayed', before, c),
      claimReportsDue: (c) => call('claimReportsDue', c),
      markDsn: (ids, what) => call('markDsn', ids, what),
      removeCompleted: (limit) => call('removeCompleted', limit),
    };
    this.gate = {
      acquire: (req) => call('acquire', req),
      renewSlot: (slot, until) => call('renewSlot', slot, until),
      releaseSlot: (slot) => call('releaseSlot', slot),
      releaseNodeSlots: (node) => call('releaseNodeSlots', node),
      releaseExpiredSlots: (now) => call('releaseExpiredSlots', now),
      transition: (key, expected, next) => call('transition', key, expected, next),
      takeToken: (key, now, rate) => call('takeToken', key, now, rate),
      getDestination: (key) => call('getDestination', key),
      listRows: (prefix) => call('listRows', prefix),
      listDestinations: () => call('listDestinations'),
      putDestination: (row) => call('putDestination', row),
      putLimits: (key, limits, now) => call('putLimits', key, limits, now),
    };
    this.events = {
      claimEvents: (sink, claim) => call('claimEvents', sink, claim),
      ackEvents: (ids) => call('ackEvents', ids),
      retryEvents: (ids, owner, next) => call('retryEvents', ids, owner, next),
      outboxDepth: () => call('outboxDepth'),
    };
    this.verifications = {
      getVerification: (address, now) => call('getVerification', address, now),
      putVerification: (entry) => call('putVerification', entry),
      deleteVerification: (address) => call('deleteVerification', address),
      listVerifications: (now, limit) => call('listVerifications', now, limit),
      removeExpiredVerifications: (now, limit) => call('removeExpiredVerifications', now, limit),
    };
    this.tlsReports = {
      countTlsSessions: (counts) => call('countTlsSessions', counts),
      claimTlsReports: (claim) => call('claimTlsReports', claim),
      finishTlsReport: (day, domain) => call('finishTlsReport', day, domain),
      retryTlsReport: (day, domain, owner, next) => call('retryTlsReport', day, domain, owner, next),
      tlsSessionCounts: (day) => call('tlsSessionCounts', day),
    };
    this.suppressions = {
      suppress: (entries) => call('suppress', entries),
      suppressed: (addresses, now) => call('suppressed', addresses, now),
      unsuppress: (addresses) => call('unsuppress', addresses),
      listSuppressions: (f) => call('listSuppressions', f),
      purgeSuppressions: (now) => call('purgeSuppressions', now),
    };
    this.idempotency = {
      getIdempotency: (token, key, since) => call('getIdempotency', token, key, since),
      expireIdempotency: (before, limit) => call('expireIdempotency', before, limit),
    };
  }

  /** The queue thread, when this client started it (`open`): `attach` hands it more ports. */
  private readonly worker: Worker | undefined;

  /** A client over a port (a session worker's), answered by the queue thread or the main thread. */
  static overPort(port: MessagePort, opts: { clock?: () => number; callTimeoutMs?: number } = {}): WorkerQueue {
    return new WorkerQueue(port, opts.clock ?? Date.now, opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
  }

  /** Has the queue thread answer requests that come over `port` too (in the same turns, sharing their commits). */
  attach(port: MessagePort): void {
    if (!this.worker) throw new Error('attach: this client did not start the queue thread');
    this.worker.postMessage({ attach: port } satisfies QueueAttach, [port]);
  }

  static async open(opts: { dataDir: string; clock?: () => number; callTimeoutMs?: number; events?: EventRoutes }): Promise<WorkerQueue> {
    const worker = new Worker(new URL('./store-worker.js', import.meta.url), { name: 'halcyon-queue', workerData: { dataDir: opts.dataDir, events: opts.events } });
    const queue = new WorkerQueue(worker, opts.clock ?? Date.now, opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
    await queue.recipients.counts(); // the worker has opened (and migrated) the database
    return queue;
  }

  /** Settles the call an answer belongs to (none when it was failed meanwhile). */
  private answer(res: QueueResponse): void {
    const w = this.waiting.get(res.id);
    if (!w) return;
    this.waiting.delete(res.id);
    clearTimeout(w.timer);
    if (res.ok) return w.resolve(res.result);
    const { code, message, detail, sqlite } = res.error;
    if (sqlite && BROKEN.test(sqlite)) {
      const err = new HalcyonError('HAL_ERR_QUEUE_FAILED', `${w.op}: ${sqlite}: ${message}`);
      this.fail(err);
      return w.reject(err);
    }
    w.reject(code?.startsWith('HAL_ERR_') ? new HalcyonError(code as ErrorCode, detail) : new Error(message));
  }

  /**
   * Requests made in one event-loop turn leave together, at its check phase (`setImmediate`): one postMessage
   * and one wake-up of the queue thread for a scheduler pass's calls or the enqueues of several sessions.
   */
  private send(req: QueueRequest, transfer: readonly ArrayBuffer[]): void {
    if (this.outbox === undefined) {
      this.outbox = [];
      setImmediate(() => {
        const out = this.outbox!;
        this.outbox = undefined;
        // Gone meanwhile: every call waiting was failed by die(); a terminated worker takes no message.
        if (this.dead) return;
        try {
          this.end.postMessage(out.length === 1 ? out[0]!.req : out.map((o) => o.req), [...new Set(out.flatMap((o) => o.transfer))]);
        } catch {
          // Something in the turn cannot be cloned (nothing was sent, nothing moved): each call alone, so only
          // the one at fault fails — as its own postMessage made it fail before — and never the process.
          for (const { req: r, transfer: t } of out) {
            try {
              this.end.postMessage(r, t);
            } catch (err) {
              this.answer({ id: r.id, ok: false, error: { message: `${r.op}: ${(err as Error).message}` } });
            }
          }
        }
      });
    }
    this.outbox.push({ req, transfer });
  }

  private fail(err: HalcyonError): void {
    if (this.closed) return;
    this.health.failed(err);
  }

  /** The thread is gone or stuck: fail, and refuse every call waiting and every later one. */
  private die(err: HalcyonError): void {
    this.dead ??= err;
    this.fail(err);
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiting.clear();
  }

  private call<K extends QueueOp>(op: K, ...args: QueueOps[K]['args']): Promise<QueueOps[K]['result']> {
    return this.callMoving([], op, ...args);
  }

  /** A call whose `transfer` buffers are moved to the queue thread (detached here) rather than copied. */
  private callMoving<K extends QueueOp>(transfer: readonly ArrayBuffer[], op: K, ...args: QueueOps[K]['args']): Promise<QueueOps[K]['result']> {
    if (this.closed) return Promise.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', `${op}: queue is closed`));
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      // The last resort: a thread that never answers (stuck in a damaged file) must not hold a caller forever.
      const timer = setTimeout(() => this.die(new HalcyonError('HAL_ERR_QUEUE_FAILED', `${op}: no answer from the queue thread in ${this.callTimeoutMs} ms`)), this.callTimeoutMs);
      timer.unref();
      this.waiting.set(id, { op, timer, resolve: resolve as (v: unknown) => void, reject });
      // The union cannot be narrowed from a generic K; op and args were checked together by this method's signature.
      this.send({ id, op, args, now: this.clock() } as QueueRequest, transfer);
    });
  }

  /** Closes the database and ends the thread; within `deadlineMs` whatever state the storage is in. */
  async close(deadlineMs = 5_000): Promise<void> {
    if (this.closed) return;
    if (!this.end.ownsQueue) {
      this.closed = true;
      return this.end.end();
    }
    const done = this.dead ? Promise.resolve() : this.call('close').catch(() => undefined);
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((r) => { timer = setTimeout(r, deadlineMs); })]);
    clearTimeout(timer);
    await this.end.end();
  }
}


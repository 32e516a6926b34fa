/**
 * queue/worker-store — the Queue the server uses: the SQLite queue running in
 * a worker thread (queue/store-worker), so commits and their fsyncs never
 * block SMTP sessions, and every request that arrives during a commit shares
 * the next one (group commit across enqueues, claims, slots and outcomes).
 * Requests are queue/worker-protocol's typed union.
 *
 * Same contracts as MessageStore, RecipientQueue and DestinationGate: a
 * resolved promise means committed. Message ids are made here, on the
 * caller's thread, because `newId()` is synchronous. CLI commands open the
 * SQLite queue directly instead.
 */
import { Worker } from 'node:worker_threads';
import { HalcyonError, type ErrorCode } from '../errors.js';
import type { DestinationGate } from './destination-gate.js';
import { createIdGenerator } from './ids.js';
import type { MessageStore } from './message-store.js';
import type { MessageId } from './model.js';
import type { RecipientQueue } from './recipient-queue.js';
import type { Queue } from './store.js';
import type { QueueOp, QueueOps, QueueRequest, QueueResponse } from './worker-protocol.js';

export class WorkerQueue implements Queue {
  readonly messages: MessageStore;
  readonly recipients: RecipientQueue;
  readonly gate: DestinationGate;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private seq = 0;
  private closed = false;

  private constructor(private readonly worker: Worker, private readonly clock: () => number) {
    const nextId = createIdGenerator(clock);
    worker.on('message', (res: QueueResponse) => {
      const w = this.waiting.get(res.id);
      if (!w) return;
      this.waiting.delete(res.id);
      if (res.ok) w.resolve(res.result);
      else {
        const code = res.error.code;
        w.reject(code?.startsWith('HAL_ERR_') ? new HalcyonError(code as ErrorCode, res.error.message) : new Error(res.error.message));
      }
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', () => this.failAll(new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue worker exited')));
    const call = this.call.bind(this);
    this.messages = {
      newId: () => nextId(),
      enqueue: (msg) => call('enqueue', msg.id === undefined ? { ...msg, id: nextId() } : msg),
      getMessage: (id) => call('getMessage', id),
      async getBody(id) {
        const u8: Uint8Array = await call('getBody', id);
        return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
      },
      deleteMessages: (ids) => call('deleteMessages', ids),
    };
    this.recipients = {
      getRecipients: (id) => call('getRecipients', id),
      getAttempts: (id) => call('getAttempts', id),
      listMessages: (filter) => call('listMessages', filter),
      counts: () => call('counts'),
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
      listDestinations: () => call('listDestinations'),
      putDestination: (row) => call('putDestination', row),
      putLimits: (key, limits, now) => call('putLimits', key, limits, now),
    };
  }

  static async open(opts: { dataDir: string; clock?: () => number }): Promise<WorkerQueue> {
    const worker = new Worker(new URL('./store-worker.js', import.meta.url), { workerData: { dataDir: opts.dataDir } });
    const queue = new WorkerQueue(worker, opts.clock ?? Date.now);
    await queue.recipients.counts(); // the worker has opened (and migrated) the database
    return queue;
  }

  private failAll(err: unknown): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private call<K extends QueueOp>(op: K, ...args: QueueOps[K]['args']): Promise<QueueOps[K]['result']> {
    if (this.closed) return Promise.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', `${op}: queue is closed`));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      // The union cannot be narrowed from a generic K; op and args were checked together by this method's signature.
      this.worker.postMessage({ id, op, args, now: this.clock() } as QueueRequest);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const done = this.call('close');
    this.closed = true;
    await done;
    await this.worker.terminate().catch(() => 0);
  }
}


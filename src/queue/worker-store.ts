/**
 * queue/worker-store — the Store the server uses: the SQLite store running in
 * a worker thread (queue/store-worker), so commits and their fsyncs never
 * block SMTP sessions, and every request that arrives during a commit shares
 * the next one (group commit across enqueues, claims and outcomes).
 *
 * Same contract as the Store interface: a resolved promise means committed.
 * Message ids are made here, on the caller's thread, because `newId()` is
 * synchronous. CLI commands open the SQLite store directly instead.
 */
import { Worker } from 'node:worker_threads';
import { HalcyonError, type ErrorCode } from '../errors.js';
import { createIdGenerator } from './ids.js';
import type {
  AttemptRow, DestinationRow, MessageId, MessageRow, NewMessage, RecipientOutcome, RecipientRow,
} from './model.js';
import type { ClaimRequest, QueueCounts, QueueFilter, Store } from './store.js';
import type { WorkerRequest, WorkerResponse } from './store-worker.js';

export class WorkerStore implements Store {
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private seq = 0;
  private readonly nextId: () => MessageId;
  private closed = false;

  private constructor(private readonly worker: Worker, private readonly clock: () => number) {
    this.nextId = createIdGenerator(clock);
    worker.on('message', (res: WorkerResponse) => {
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
  }

  static async open(opts: { dataDir: string; clock?: () => number }): Promise<WorkerStore> {
    const worker = new Worker(new URL('./store-worker.js', import.meta.url), { workerData: { dataDir: opts.dataDir } });
    const store = new WorkerStore(worker, opts.clock ?? Date.now);
    await store.counts(); // the worker has opened (and migrated) the database
    return store;
  }

  private failAll(err: unknown): void {
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', `${method}: queue is closed`));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args, now: this.clock() } satisfies WorkerRequest);
    });
  }

  newId(): MessageId {
    return this.nextId();
  }

  enqueue(msg: NewMessage): Promise<MessageId> {
    return this.call('enqueue', msg.id === undefined ? { ...msg, id: this.nextId() } : msg);
  }

  async getBody(id: MessageId): Promise<Buffer> {
    const u8 = await this.call<Uint8Array>('getBody', id);
    return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
  }

  getMessage(id: MessageId): Promise<MessageRow | undefined> { return this.call('getMessage', id); }
  getRecipients(id: MessageId): Promise<RecipientRow[]> { return this.call('getRecipients', id); }
  getAttempts(id: MessageId): Promise<AttemptRow[]> { return this.call('getAttempts', id); }
  listMessages(filter: QueueFilter): Promise<{ message: MessageRow; recipients: RecipientRow[] }[]> { return this.call('listMessages', filter); }
  counts(): Promise<QueueCounts> { return this.call('counts'); }
  claimDue(req: ClaimRequest): Promise<RecipientRow[]> { return this.call('claimDue', req); }
  releaseExpiredLeases(now: number): Promise<number> { return this.call('releaseExpiredLeases', now); }
  releaseAllInflight(now: number): Promise<number> { return this.call('releaseAllInflight', now); }
  recordOutcomes(outcomes: readonly RecipientOutcome[], now: number): Promise<void> { return this.call('recordOutcomes', outcomes, now); }
  nextDueAt(): Promise<number | undefined> { return this.call('nextDueAt'); }
  getDestination(key: string): Promise<DestinationRow | undefined> { return this.call('getDestination', key); }
  listDestinations(): Promise<(DestinationRow & { queued: number })[]> { return this.call('listDestinations'); }
  putDestination(row: DestinationRow): Promise<void> { return this.call('putDestination', row); }
  parkDestination(key: string, until: number, limit?: number): Promise<number> { return this.call('parkDestination', key, until, limit); }
  flush(opts: { domain?: string; messageId?: MessageId; destination?: string; now: number }): Promise<number> { return this.call('flush', opts); }
  setHeld(id: MessageId, held: boolean): Promise<boolean> { return this.call('setHeld', id, held); }
  deleteMessages(ids: readonly MessageId[]): Promise<number> { return this.call('deleteMessages', ids); }
  markDsn(recipientIds: readonly number[], what: 'final' | 'delay'): Promise<void> { return this.call('markDsn', recipientIds, what); }
  removeCompleted(limit: number): Promise<MessageId[]> { return this.call('removeCompleted', limit); }
  listExpirable(receivedBefore: number, limit: number): Promise<RecipientRow[]> { return this.call('listExpirable', receivedBefore, limit); }
  listDelayed(receivedBefore: number, limit: number): Promise<RecipientRow[]> { return this.call('listDelayed', receivedBefore, limit); }
  listReportsDue(limit: number): Promise<RecipientRow[]> { return this.call('listReportsDue', limit); }

  async close(): Promise<void> {
    if (this.closed) return;
    const done = this.call<void>('close');
    this.closed = true;
    await done;
    await this.worker.terminate().catch(() => 0);
  }
}

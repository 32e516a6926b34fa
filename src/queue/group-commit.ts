/**
 * queue/group-commit — the group commit of enqueues, once for both queues:
 * every `add` made in the same event-loop turn waits for the next
 * `setImmediate` (or an explicit `flush`), is cut into batches (at most
 * `maxItems` items, and `maxBytes` of them when given — one oversized item
 * still makes a batch of its own) and each batch is handed to `write`: one
 * transaction, one fsync (or one synchronous commit) for all of them.
 *
 * Settling, the same on every queue: when `write` returns (or resolves),
 * every item of the batch it did not refuse on its own resolves with its id;
 * when it throws (or rejects), every item it did not refuse rejects with
 * that error as a HAL_ERR_QUEUE_WRITE — nothing of the batch was stored. A
 * `write` refuses one item alone (a caller-assigned id already stored) with
 * `refuse`, before it writes the others.
 *
 * What a batch is written as (SQLite's statements, PostgreSQL's multi-row
 * INSERTs) is the implementation's; this file holds no SQL and no I/O of its
 * own. `inFlight` is what `close()` waits for.
 */
import { detailOf, HalcyonError } from '../errors.js';
import type { MessageId } from './model.js';

/** One item of a batch, as `write` sees it. */
export interface Entry<T> {
  readonly id: MessageId;
  readonly item: T;
}

export interface GroupCommitOptions<T> {
  readonly maxItems: number;
  /** With `sizeOf`, a batch is also cut before its items' sizes add up to more than this. */
  readonly maxBytes?: number;
  readonly sizeOf?: (item: T) => number;
  /**
   * Writes one batch in one transaction (synchronously, or as a promise). `refuse(entry, why)` rejects one
   * entry alone; the rest settle with the batch. Throwing fails the whole batch, nothing of it stored.
   */
  readonly write: (batch: readonly Entry<T>[], refuse: (entry: Entry<T>, why: Error) => void) => void | Promise<void>;
  /** After a batch committed, with the number of items it stored (statistics). */
  readonly committed?: (stored: number) => void;
}

interface Waiting<T> extends Entry<T> {
  settled: boolean;
  readonly resolve: (id: MessageId) => void;
  readonly reject: (err: unknown) => void;
}

export class GroupCommit<T> {
  private batches: { items: Waiting<T>[]; bytes: number }[] = [];
  private timer: NodeJS.Immediate | undefined;
  /** Batches being written (an asynchronous `write`); close() waits for them. */
  readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: GroupCommitOptions<T>) {}

  /** Queues `item` under `id` for the next batch; settles when that batch has committed (or failed). */
  add(id: MessageId, item: T): Promise<MessageId> {
    return new Promise<MessageId>((resolve, reject) => {
      const size = this.o.sizeOf?.(item) ?? 0;
      let batch = this.batches.at(-1);
      const full = batch !== undefined && (batch.items.length >= this.o.maxItems ||
        (this.o.maxBytes !== undefined && batch.items.length > 0 && batch.bytes + size > this.o.maxBytes));
      if (batch === undefined || full) {
        batch = { items: [], bytes: 0 };
        this.batches.push(batch);
      }
      batch.items.push({ id, item, settled: false, resolve, reject });
      batch.bytes += size;
      this.timer ??= setImmediate(() => this.flush());
    });
  }

  /** Writes every batch waiting now (a synchronous `write` before this returns; an asynchronous one started). */
  flush(): void {
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    const batches = this.batches;
    this.batches = [];
    for (const { items } of batches) {
      const refuse = (e: Entry<T>, why: Error): void => {
        const w = e as Waiting<T>;
        if (w.settled) return;
        w.settled = true;
        w.reject(why);
      };
      const done = (): void => {
        const left = items.filter((w) => !w.settled);
        if (left.length > 0) this.o.committed?.(left.length);
        for (const w of left) {
          w.settled = true;
          w.resolve(w.id);
        }
      };
      const failed = (err: unknown): void => {
        const left = items.filter((w) => !w.settled);
        const e = err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `enqueue of ${left.length} message(s): ${detailOf(err)}`, { cause: err });
        for (const w of left) {
          w.settled = true;
          w.reject(e);
        }
      };
      let result: void | Promise<void>;
      try {
        result = this.o.write(items, refuse);
      } catch (err) {
        failed(err);
        continue;
      }
      if (result instanceof Promise) {
        const p: Promise<void> = result.then(done, failed).finally(() => this.inFlight.delete(p));
        this.inFlight.add(p);
      } else {
        done();
      }
    }
  }
}

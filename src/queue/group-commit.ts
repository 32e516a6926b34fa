/**
 * queue/group-commit — the group commit of the queue's writes, once for both
 * queues: every `add` made in the same event-loop turn waits for the next
 * `setImmediate` (or an explicit `flush`), is cut into batches (at most
 * `maxItems` items, and `maxBytes` of them when given — one oversized item
 * still makes a batch of its own) and each batch is handed to `write`: one
 * transaction, one fsync (or one synchronous commit) for all of them.
 * Enqueues use it on both stores; the PostgreSQL store's outcomes too.
 *
 * With `maxInFlight` (an asynchronous `write`: a shared database), no more
 * than that many batches are written at once: what is added while they are
 * in flight waits, and goes in the next batch as soon as one of them has
 * committed — under load the batches grow and the commits per item fall,
 * as SQLite's one transaction per queue-thread turn does.
 *
 * Settling, the same on every queue: when `write` returns (or resolves),
 * every item of the batch it did not refuse on its own resolves with its id;
 * when it throws (or rejects), every item it did not refuse rejects with
 * that error as a HAL_ERR_QUEUE_WRITE — nothing of the batch was stored. A
 * `write` refuses one item alone (a caller-assigned id already stored) with
 * `refuse`, before it writes the others. With `retrySingly`, a failed batch
 * of several items whose error it accepts is written again one item per
 * batch: one caller's row that the database refuses fails that caller only.
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
  /** At most this many asynchronous batches written at once; the next waits for one to settle (default: no limit). */
  readonly maxInFlight?: number;
  /**
   * Whether a batch of several items that failed with `err` is written again one item per batch (an error of
   * the rows, after which nothing of the batch was stored), rather than failing all its items (default: never).
   */
  readonly retrySingly?: (err: unknown) => boolean;
  /** What an item is, in a failure's message (default "enqueue"). */
  readonly what?: string;
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
      this.timer ??= setImmediate(() => this.turn());
    });
  }

  /** Writes every batch waiting now (a synchronous `write` before this returns; an asynchronous one started), whatever is in flight. */
  flush(): void {
    this.start(Infinity);
  }

  /** The turn's flush: the batches waiting, as many as `maxInFlight` lets start now; the rest when one settles. */
  private turn(): void {
    this.start(this.o.maxInFlight ?? Infinity);
  }

  private start(maxInFlight: number): void {
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    while (this.batches.length > 0 && this.inFlight.size < maxInFlight) this.write(this.batches.shift()!.items, true);
  }

  private write(items: Waiting<T>[], mayRetry: boolean): void {
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
      if (mayRetry && left.length > 1 && this.o.retrySingly?.(err)) {
        for (const w of left) this.write([w], false);
        return;
      }
      const e = err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `${this.o.what ?? 'enqueue'} of ${left.length} item(s): ${detailOf(err)}`, { cause: err });
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
      return;
    }
    if (result instanceof Promise) {
      const p: Promise<void> = result.then(done, failed).finally(() => {
        this.inFlight.delete(p);
        // What waited for a free place goes now (a close()'s flush has already started it).
        if (this.batches.length > 0 && this.timer === undefined) this.turn();
      });
      this.inFlight.add(p);
    } else {
      done();
    }
  }
}

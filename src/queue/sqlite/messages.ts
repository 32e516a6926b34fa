/**
 * queue/sqlite/messages — MessageStore over the SQLite queue: messages and
 * their recipients in one file, so one commit covers a message's row, its
 * recipients and where its body is. A body under SPOOL_MIN_BYTES is stored in
 * the row's transaction itself; a larger one is first appended to a spool
 * segment (queue/spool: one write and one fdatasync for the whole batch) and
 * the row keeps its location, so large bodies are written once instead of to
 * the WAL and again at checkpoint (docs/decisions/0005).
 *
 * Enqueues are group-committed: every `enqueue()` made in the same event-loop
 * turn is written by one transaction (one fsync) on the next `setImmediate`
 * (or at once by `flushPending`, which the queue thread calls inside its
 * turn), and all their promises settle together — resolved once it has
 * committed, or all rejected with HAL_ERR_QUEUE_WRITE with nothing of the
 * batch stored.
 */
import type Database from 'better-sqlite3';
import { HalcyonError } from '../../errors.js';
import { createIdGenerator } from '../ids.js';
import type { MessageStore } from '../message-store.js';
import type { MessageId, MessageRow, NewMessage } from '../model.js';
import type { SqliteDb } from './db.js';
import { MESSAGE_COLUMNS, domainOf, toMessage, type RawMessage } from '../rows.js';
import type { BodySpool, SpoolLocation } from '../spool.js';

/** Bodies of at least this size go to the spool; smaller ones cost less inline than a second fsync. */
export const SPOOL_MIN_BYTES = 16 * 1024;

/** A batch is cut at whichever comes first; the next one commits right after it. */
export const BATCH_MAX_MESSAGES = 256;
export const BATCH_MAX_BYTES = 64 * 1024 * 1024;

interface Pending {
  readonly id: MessageId;
  readonly msg: NewMessage;
  /** Where the body was spooled, once it was (set just before the batch's rows are written). */
  spooled?: SpoolLocation;
  readonly resolve: (id: MessageId) => void;
  readonly reject: (err: unknown) => void;
}
interface Batch { readonly items: Pending[]; bytes: number }

export class SqliteMessageStore implements MessageStore {
  private readonly nextId: () => MessageId;
  private batches: Batch[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  private readonly insertBatch: Database.Transaction<(items: readonly Pending[]) => void>;

  constructor(private readonly d: SqliteDb, private readonly spool: BodySpool) {
    this.nextId = createIdGenerator(d.clock);
    this.insertBatch = d.db.transaction((items: readonly Pending[]) => {
      const now = d.clock();
      for (const { id, msg, spooled } of items) {
        d.st(`INSERT INTO messages (id, sender, params, received_at, size, trace, held, dsn_for)
                 VALUES (?, ?, ?, ?, ?, ?, 0, ?)`)
          .run(id, msg.sender, JSON.stringify(msg.params), msg.receivedAt, msg.body.length,
            JSON.stringify(msg.trace), msg.dsnFor ?? null);
        if (spooled) {
          d.st(`INSERT INTO bodies (message_id, data, segment, seg_offset, seg_length) VALUES (?, X'', ?, ?, ?)`)
            .run(id, spooled.segment, spooled.offset, spooled.length);
        } else {
          d.st('INSERT INTO bodies (message_id, data) VALUES (?, ?)').run(id, msg.body);
        }
        for (const r of msg.recipients) {
          d.st(`INSERT INTO recipients (message_id, address, domain, orcpt, notify, destination, state,
                     attempts, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?)`)
            .run(id, r.address, domainOf(r.address), r.orcpt ?? null,
              r.notify !== undefined ? JSON.stringify(r.notify) : null, r.destination, now, now);
        }
      }
    });
  }

  newId(): MessageId {
    return this.nextId();
  }

  enqueue(msg: NewMessage): Promise<MessageId> {
    if (this.d.closed) return Promise.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue is closed'));
    if (msg.recipients.length === 0) return Promise.reject(new RangeError('a message needs at least one recipient'));
    return new Promise<MessageId>((resolve, reject) => {
      let batch = this.batches.at(-1);
      const full = batch !== undefined && (batch.items.length >= BATCH_MAX_MESSAGES ||
        (batch.items.length > 0 && batch.bytes + msg.body.length > BATCH_MAX_BYTES));
      if (batch === undefined || full) {
        batch = { items: [], bytes: 0 };
        this.batches.push(batch);
      }
      batch.items.push({ id: msg.id ?? this.nextId(), msg, resolve, reject });
      batch.bytes += msg.body.length;
      this.flushTimer ??= setImmediate(() => this.flushPending());
    });
  }

  /** Writes the enqueues waiting for the next turn now (each batch its own transaction, or savepoint). */
  flushPending(): void {
    if (this.flushTimer !== undefined) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    const batches = this.batches;
    this.batches = [];
    for (const batch of batches) {
      let items: Pending[] = batch.items;
      try {
        items = this.dropDuplicateIds(batch.items);
        if (items.length === 0) continue;
        // Durable bytes first, then the rows that point at them (a crash between leaves only garbage).
        const large = items.filter((p) => p.msg.body.length >= SPOOL_MIN_BYTES);
        const at = this.spool.append(large.map((p) => p.msg.body));
        large.forEach((p, i) => { p.spooled = at[i]; });
        this.insertBatch.immediate(items);
      } catch (err) {
        const e = new HalcyonError('HAL_ERR_QUEUE_WRITE', `enqueue of ${items.length} message(s): ${String(err)}`, { cause: err });
        for (const p of items) p.reject(e);
        continue;
      }
      this.d.stats.commits++;
      this.d.stats.enqueueCommits++;
      this.d.stats.enqueued += items.length;
      for (const p of items) p.resolve(p.id);
    }
  }

  /**
   * A caller-assigned id already stored (or repeated in the batch) would fail
   * the primary key and with it every other message of the batch: reject just
   * that one up front.
   */
  private dropDuplicateIds(items: readonly Pending[]): Pending[] {
    const seen = new Set<MessageId>();
    const exists = this.d.st('SELECT 1 FROM messages WHERE id = ?').pluck();
    return items.filter((p) => {
      const dup = seen.has(p.id) || (p.msg.id !== undefined && exists.get(p.id) !== undefined);
      seen.add(p.id);
      if (dup) p.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', `message id ${p.id} already in the queue`));
      return !dup;
    });
  }

  async getMessage(id: MessageId): Promise<MessageRow | undefined> {
    const raw = this.d.st(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?`).get(id) as RawMessage | undefined;
    return raw && toMessage(raw);
  }

  async getBody(id: MessageId): Promise<Buffer> {
    const row = this.d.st('SELECT data, segment, seg_offset, seg_length FROM bodies WHERE message_id = ?').get(id) as
      { data: Buffer; segment: string | null; seg_offset: number | null; seg_length: number | null } | undefined;
    if (!row) throw new HalcyonError('HAL_ERR_QUEUE_NOT_FOUND', id);
    if (row.segment === null) return row.data;
    return this.spool.read({ segment: row.segment, offset: row.seg_offset ?? 0, length: row.seg_length ?? 0 });
  }

  async deleteMessages(ids: readonly MessageId[]): Promise<number> {
    return this.d.write('deleteMessages', () => {
      const del = this.d.st('DELETE FROM messages WHERE id = ?'); // cascades to body, recipients, attempts
      let n = 0;
      for (const id of ids) n += del.run(id).changes;
      return n;
    });
  }

  /** Removes spool segments no body refers to any more (see BodySpool.collect for which are safe). */
  collectSpool(): number {
    const referenced = new Set(this.d.st('SELECT DISTINCT segment FROM bodies WHERE segment IS NOT NULL').pluck().all() as string[]);
    return this.spool.collect(referenced);
  }
}

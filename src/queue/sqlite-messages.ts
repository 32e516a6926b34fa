/**
 * queue/sqlite-messages — MessageStore over the SQLite queue: messages and
 * their bodies in the same file as their recipients, so one commit covers a
 * message's row, its recipients and its body.
 *
 * Enqueues are group-committed: every `enqueue()` made in the same event-loop
 * turn is written by one transaction (one fsync) on the next `setImmediate`
 * (or at once by `flushPending`, which the queue thread calls inside its
 * turn), and all their promises settle together — resolved once it has
 * committed, or all rejected with HAL_ERR_QUEUE_WRITE with nothing of the
 * batch stored.
 */
import type Database from 'better-sqlite3';
import { HalcyonError } from '../errors.js';
import { createIdGenerator } from './ids.js';
import type { MessageStore } from './message-store.js';
import type { MessageId, MessageRow, NewMessage } from './model.js';
import type { SqliteDb } from './sqlite-db.js';
import { MESSAGE_COLUMNS, domainOf, toMessage, type RawMessage } from './sqlite-rows.js';

/** A batch is cut at whichever comes first; the next one commits right after it. */
export const BATCH_MAX_MESSAGES = 256;
export const BATCH_MAX_BYTES = 64 * 1024 * 1024;

interface Pending {
  readonly id: MessageId;
  readonly msg: NewMessage;
  readonly resolve: (id: MessageId) => void;
  readonly reject: (err: unknown) => void;
}
interface Batch { readonly items: Pending[]; bytes: number }

export class SqliteMessageStore implements MessageStore {
  private readonly nextId: () => MessageId;
  private batches: Batch[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  private readonly insertBatch: Database.Transaction<(items: readonly Pending[]) => void>;

  constructor(private readonly d: SqliteDb) {
    this.nextId = createIdGenerator(d.clock);
    this.insertBatch = d.db.transaction((items: readonly Pending[]) => {
      const now = d.clock();
      for (const { id, msg } of items) {
        d.st(`INSERT INTO messages (id, sender, params, received_at, size, trace, held, dsn_for)
                 VALUES (?, ?, ?, ?, ?, ?, 0, ?)`)
          .run(id, msg.sender, JSON.stringify(msg.params), msg.receivedAt, msg.body.length,
            JSON.stringify(msg.trace), msg.dsnFor ?? null);
        d.st('INSERT INTO bodies (message_id, data) VALUES (?, ?)').run(id, msg.body);
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
    const row = this.d.st('SELECT data FROM bodies WHERE message_id = ?').get(id) as { data: Buffer } | undefined;
    if (!row) throw new HalcyonError('HAL_ERR_QUEUE_NOT_FOUND', id);
    return row.data;
  }

  async deleteMessages(ids: readonly MessageId[]): Promise<number> {
    return this.d.write('deleteMessages', () => {
      const del = this.d.st('DELETE FROM messages WHERE id = ?'); // cascades to body, recipients, attempts
      let n = 0;
      for (const id of ids) n += del.run(id).changes;
      return n;
    });
  }
}

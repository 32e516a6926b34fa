/**
 * queue/sqlite/messages — MessageStore over the SQLite queue: messages and
 * their recipients in one file, so one commit covers a message's row, its
 * recipients and where its body is. A body under SPOOL_MIN_BYTES is stored in
 * the row's transaction itself; a larger one is first appended to a spool
 * segment (queue/spool: one write and one fdatasync for the whole batch) and
 * the row keeps its location, so large bodies are written once instead of to
 * the WAL and again at checkpoint (docs/decisions/0005).
 *
 * Enqueues are group-committed (queue/group-commit, the same mechanism as
 * PostgreSQL's): every `enqueue()` made in the same event-loop turn is
 * written by one transaction (one fsync) on the next `setImmediate` (or at
 * once by `flushPending`, which the queue thread calls inside its turn), and
 * all their promises settle together — resolved once it has committed, or
 * all rejected with HAL_ERR_QUEUE_WRITE with nothing of the batch stored.
 * An `enqueueGroup` is one item of a batch: its messages and its idempotency
 * key row (queue/idempotency) are written together or not at all.
 */
import type Database from 'better-sqlite3';
import { HalcyonError } from '../../errors.js';
import { createIdGenerator } from '../ids.js';
import { addEnqueueUnit, unitBytes, type EnqueueUnit, type MessageStore } from '../message-store.js';
import { IDEMPOTENCY_COLUMNS, IDEMPOTENCY_TTL_MS, idempotencyRow, type IdempotencyRecord } from '../idempotency.js';
import type { MessageId, MessageRow, NewMessage } from '../model.js';
import type { SqliteDb } from './db.js';
import { MESSAGE_COLUMNS, domainOf, toMessage, type RawMessage } from '../rows.js';
import type { BodySpool, SpoolLocation } from '../spool.js';
import { enqueueEvents, factsOf, routeEvents } from '../event.js';
import { insertOutbox, messageFacts } from './events.js';
import { GroupCommit, type Entry } from '../group-commit.js';

/** Bodies of at least this size go to the spool; smaller ones cost less inline than a second fsync. */
export const SPOOL_MIN_BYTES = 16 * 1024;

/** A batch is cut at whichever comes first; the next one commits right after it. */
export const BATCH_MAX_MESSAGES = 256;
export const BATCH_MAX_BYTES = 64 * 1024 * 1024;

export class SqliteMessageStore implements MessageStore {
  private readonly nextId: () => MessageId;
  private readonly commits: GroupCommit<EnqueueUnit>;
  private readonly insertBatch: Database.Transaction<(items: readonly Entry<EnqueueUnit>[], spooled: ReadonlyMap<MessageId, SpoolLocation>) => void>;

  constructor(private readonly d: SqliteDb, private readonly spool: BodySpool) {
    this.nextId = createIdGenerator(d.clock);
    this.insertBatch = d.db.transaction((items: readonly Entry<EnqueueUnit>[], spooledAt: ReadonlyMap<MessageId, SpoolLocation>) => {
      const now = d.clock();
      for (const { item: unit } of items) {
        // A stale row of the same key (older than the TTL) is replaced: dropTakenKeys let only such a key through.
        if (unit.key) d.st(`INSERT OR REPLACE INTO idempotency_keys (${IDEMPOTENCY_COLUMNS}) VALUES (@token, @key, @body_hash, @state, @status, @response, @created_at)`).run(idempotencyRow(unit.key));
        for (const msg of unit.messages) this.insertMessage(msg, spooledAt.get(msg.id), now);
      }
    });
    this.commits = new GroupCommit<EnqueueUnit>({
      maxItems: BATCH_MAX_MESSAGES, maxBytes: BATCH_MAX_BYTES, sizeOf: unitBytes,
      write: (batch, refuse) => {
        const items = this.dropTakenKeys(this.dropDuplicateIds(batch, refuse), refuse);
        if (items.length === 0) return;
        // Durable bytes first, then the rows that point at them (a crash between leaves only garbage).
        const large = items.flatMap((e) => e.item.messages.filter((m) => m.body.length >= SPOOL_MIN_BYTES));
        const at = this.spool.append(large.map((m) => m.body));
        this.insertBatch.immediate(items, new Map(large.map((m, i) => [m.id, at[i]!])));
      },
      committed: (n) => {
        this.d.stats.commits++;
        this.d.stats.enqueueCommits++;
        this.d.stats.enqueued += n;
      },
    });
  }

  private insertMessage(msg: NewMessage & { readonly id: MessageId }, spooled: SpoolLocation | undefined, now: number): void {
    const d = this.d;
    const id = msg.id;
    const facts = factsOf(msg);
    d.st(`INSERT INTO messages (id, sender, params, received_at, size, trace, held, dsn_for, event_facts)
             VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)`)
      .run(id, msg.sender, JSON.stringify(msg.params), msg.receivedAt, msg.body.length,
        JSON.stringify(msg.trace), msg.dsnFor ?? null, JSON.stringify(facts));
    if (spooled) {
      d.st(`INSERT INTO bodies (message_id, data, segment, seg_offset, seg_length) VALUES (?, X'', ?, ?, ?)`)
        .run(id, spooled.segment, spooled.offset, spooled.length);
    } else {
      d.st('INSERT INTO bodies (message_id, data) VALUES (?, ?)').run(id, msg.body);
    }
    for (const r of msg.recipients) {
      d.st(`INSERT INTO recipients (message_id, address, domain, orcpt, notify, destination, tenant, state,
                 attempts, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?)`)
        .run(id, r.address, domainOf(r.address), r.orcpt ?? null,
          r.notify !== undefined ? JSON.stringify(r.notify) : null, r.destination, msg.tenant ?? '', now, now);
    }
    insertOutbox(d, routeEvents(d.events, enqueueEvents(d.events, now, { queueId: id, sender: msg.sender, facts }, msg,
      (about) => messageFacts(d, [about]).get(about))), now);
  }

  newId(): MessageId {
    return this.nextId();
  }

  async enqueue(msg: NewMessage): Promise<MessageId> {
    return (await addEnqueueUnit(this.commits, this.d.closed, () => this.nextId(), [msg]))[0]!;
  }

  enqueueGroup(msgs: readonly NewMessage[], key?: IdempotencyRecord): Promise<MessageId[]> {
    return addEnqueueUnit(this.commits, this.d.closed, () => this.nextId(), msgs, key);
  }

  /** Writes the enqueues waiting for the next turn now (each batch its own transaction). */
  flushPending(): void {
    this.commits.flush();
  }

  /**
   * A caller-assigned id already stored (or repeated in the batch) would fail
   * the primary key and with it every other message of the batch: refuse just
   * that unit up front.
   */
  private dropDuplicateIds(items: readonly Entry<EnqueueUnit>[], refuse: (e: Entry<EnqueueUnit>, why: Error) => void): Entry<EnqueueUnit>[] {
    const seen = new Set<MessageId>();
    const exists = this.d.st('SELECT 1 FROM messages WHERE id = ?').pluck();
    return items.filter((e) => {
      const dup = e.item.messages.find((m) => seen.has(m.id) || exists.get(m.id) !== undefined);
      for (const m of e.item.messages) seen.add(m.id);
      if (dup) refuse(e, new HalcyonError('HAL_ERR_QUEUE_WRITE', `message id ${dup.id} already in the queue`));
      return !dup;
    });
  }

  /** A unit whose idempotency key is stored (and young), or taken by an earlier unit of the batch, is refused whole. */
  private dropTakenKeys(items: readonly Entry<EnqueueUnit>[], refuse: (e: Entry<EnqueueUnit>, why: Error) => void): Entry<EnqueueUnit>[] {
    const seen = new Set<string>();
    const stored = this.d.st('SELECT created_at FROM idempotency_keys WHERE token = ? AND key = ?').pluck();
    return items.filter((e) => {
      const k = e.item.key;
      if (!k) return true;
      const name = JSON.stringify([k.token, k.key]);
      const at = stored.get(k.token, k.key) as number | undefined;
      const taken = seen.has(name) || (at !== undefined && at >= k.createdAt - IDEMPOTENCY_TTL_MS);
      seen.add(name);
      if (taken) refuse(e, new HalcyonError('HAL_ERR_IDEMPOTENCY_TAKEN', k.key));
      return !taken;
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

  async getForDelivery(id: MessageId): Promise<{ message: MessageRow; body: Buffer } | undefined> {
    const message = await this.getMessage(id);
    if (!message) return undefined;
    const body = await this.getBody(id).catch(() => undefined);
    return body && { message, body };
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

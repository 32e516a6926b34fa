/**
 * queue/pg/messages — MessageStore over the shared PostgreSQL queue.
 *
 * Enqueues are group-committed as on SQLite: every `enqueue()` made in the
 * same event-loop turn goes into one transaction (three multi-row INSERTs:
 * messages, bodies, recipients), and all their promises settle together once
 * it has committed — or all reject with HAL_ERR_QUEUE_WRITE with nothing of
 * the batch stored. A caller-assigned id already stored is rejected alone.
 */
import { HalcyonError } from '../../errors.js';
import { createIdGenerator } from '../ids.js';
import type { MessageStore } from '../message-store.js';
import type { MessageId, MessageRow, NewMessage } from '../model.js';
import type { PgDb } from './db.js';
import { MESSAGE_COLUMNS, domainOf, toMessage, type RawMessage } from '../rows.js';

const BATCH_MAX_MESSAGES = 256;

interface Pending {
  readonly id: MessageId;
  readonly msg: NewMessage;
  readonly resolve: (id: MessageId) => void;
  readonly reject: (err: unknown) => void;
}

export class PgMessageStore implements MessageStore {
  private readonly nextId: () => MessageId;
  private pending: Pending[] = [];
  private timer: NodeJS.Immediate | undefined;
  /** Batches being written; close() waits for them. */
  readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly d: PgDb) {
    this.nextId = createIdGenerator(d.clock);
  }

  newId(): MessageId {
    return this.nextId();
  }

  enqueue(msg: NewMessage): Promise<MessageId> {
    if (this.d.closed) return Promise.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue is closed'));
    if (msg.recipients.length === 0) return Promise.reject(new RangeError('a message needs at least one recipient'));
    return new Promise<MessageId>((resolve, reject) => {
      this.pending.push({ id: msg.id ?? this.nextId(), msg, resolve, reject });
      this.timer ??= setImmediate(() => this.flushPending());
    });
  }

  /** Starts writing what waits, in batches of at most BATCH_MAX_MESSAGES. */
  flushPending(): void {
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += BATCH_MAX_MESSAGES) {
      const p = this.write(all.slice(i, i + BATCH_MAX_MESSAGES)).finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    let items = batch;
    try {
      await this.d.tx('enqueue', async (c) => {
        const given = batch.filter((p) => p.msg.id !== undefined).map((p) => p.id);
        const taken = new Set(given.length ? (await c.query<{ id: string }>('SELECT id FROM messages WHERE id = ANY($1)', [given])).rows.map((r) => r.id) : []);
        const seen = new Set<MessageId>();
        items = batch.filter((p) => {
          const dup = taken.has(p.id) || seen.has(p.id);
          seen.add(p.id);
          if (dup) p.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', `message id ${p.id} already in the queue`));
          return !dup;
        });
        if (items.length === 0) return;
        const now = this.d.clock();
        await c.query(`INSERT INTO messages (id, sender, params, received_at, size, trace, dsn_for)
          SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::integer[], $6::text[], $7::text[])`, [
          items.map((p) => p.id), items.map((p) => p.msg.sender), items.map((p) => JSON.stringify(p.msg.params)),
          items.map((p) => p.msg.receivedAt), items.map((p) => p.msg.body.length), items.map((p) => JSON.stringify(p.msg.trace)),
          items.map((p) => p.msg.dsnFor ?? null),
        ]);
        await c.query('INSERT INTO bodies (message_id, data) SELECT * FROM unnest($1::text[], $2::bytea[])',
          [items.map((p) => p.id), items.map((p) => p.msg.body)]);
        const rcpts = items.flatMap((p) => p.msg.recipients.map((r) => ({ id: p.id, r })));
        await c.query(`INSERT INTO recipients (message_id, address, domain, orcpt, notify, destination, state, attempts, next_attempt_at, updated_at)
          SELECT t.m, t.a, t.d, t.o, t.n, t.dest, 'queued', 0, $7, $7
          FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(m, a, d, o, n, dest, ord)
          ORDER BY t.ord`, [
          rcpts.map((x) => x.id), rcpts.map((x) => x.r.address), rcpts.map((x) => domainOf(x.r.address)), rcpts.map((x) => x.r.orcpt ?? null),
          rcpts.map((x) => (x.r.notify !== undefined ? JSON.stringify(x.r.notify) : null)), rcpts.map((x) => x.r.destination), now,
        ]);
      });
    } catch (err) {
      const e = err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `enqueue of ${items.length} message(s): ${String(err)}`, { cause: err });
      for (const p of items) p.reject(e);
      return;
    }
    for (const p of items) p.resolve(p.id);
  }

  async getMessage(id: MessageId): Promise<MessageRow | undefined> {
    const [raw] = await this.d.read<RawMessage & Record<string, unknown>>('getMessage', `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1`, [id]);
    return raw && toMessage(raw);
  }

  async getBody(id: MessageId): Promise<Buffer> {
    const [row] = await this.d.read<{ data: Buffer }>('getBody', 'SELECT data FROM bodies WHERE message_id = $1', [id]);
    if (!row) throw new HalcyonError('HAL_ERR_QUEUE_NOT_FOUND', id);
    return row.data;
  }

  async deleteMessages(ids: readonly MessageId[]): Promise<number> {
    const rows = await this.d.read<{ id: string }>('deleteMessages', 'DELETE FROM messages WHERE id = ANY($1) RETURNING id', [[...ids]]);
    return rows.length;
  }
}

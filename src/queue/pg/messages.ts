/**
 * queue/pg/messages — MessageStore over the shared PostgreSQL queue.
 *
 * Enqueues are group-committed by the same mechanism as on SQLite
 * (queue/group-commit): every `enqueue()` made in the same event-loop turn
 * (or while WRITES_IN_FLIGHT batches are being committed: pg/db) goes into
 * one transaction (three multi-row INSERTs: messages, bodies,
 * recipients — one statement of data-modifying CTEs when no unit has a key
 * and no event sink is set), and all their promises settle together once it has committed
 * — or, when it fails on a live connection, the batch is written again one
 * unit per transaction, so only a unit whose own rows are refused rejects
 * (HAL_ERR_QUEUE_WRITE); a lost connection rejects the whole batch.
 * A caller-assigned id already stored is refused alone. An `enqueueGroup` is
 * one item of a batch: its idempotency key row is claimed first (pg/idempotency:
 * waiting on another node's uncommitted claim of the same key) and, when the key
 * is held, the unit is refused whole before any of its messages is written.
 * The deliveries' reads (getForDelivery) of one turn are one statement.
 */
import { HalcyonError } from '../../errors.js';
import { createIdGenerator } from '../ids.js';
import { addEnqueueUnit, type EnqueueUnit, type MessageStore } from '../message-store.js';
import type { IdempotencyRecord } from '../idempotency.js';
import { claimKey } from './idempotency.js';
import type { MessageId, MessageRow, NewMessage } from '../model.js';
import { retryable, WRITES_IN_FLIGHT, type PgDb } from './db.js';
import { MESSAGE_COLUMNS, domainOf, toMessage, type RawMessage } from '../rows.js';
import { enqueueEvents, factsOf, routeEvents } from '../event.js';
import { insertOutbox, messageFacts } from './events.js';
import { GroupCommit, type Entry } from '../group-commit.js';
import { coalesced } from '../coalesce.js';

const BATCH_MAX_MESSAGES = 256;

const keyOrder = (a: IdempotencyRecord, b: IdempotencyRecord): number => (a.token === b.token ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.token < b.token ? -1 : 1);

export class PgMessageStore implements MessageStore {
  private readonly nextId: () => MessageId;
  private readonly commits = new GroupCommit<EnqueueUnit>({
    maxItems: BATCH_MAX_MESSAGES, maxInFlight: WRITES_IN_FLIGHT, retrySingly: retryable, write: (batch, refuse) => this.write(batch, refuse),
  });

  constructor(private readonly d: PgDb) {
    this.nextId = createIdGenerator(d.clock);
  }

  /** Batches being written; close() waits for them. */
  get inFlight(): ReadonlySet<Promise<void>> {
    return this.commits.inFlight;
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

  /** Starts writing what waits, in batches of at most BATCH_MAX_MESSAGES. */
  flushPending(): void {
    this.commits.flush();
  }

  private async write(batch: readonly Entry<EnqueueUnit>[], refuse: (e: Entry<EnqueueUnit>, why: Error) => void): Promise<void> {
    // Plain enqueues (one message each, no idempotency key) with no event sink: one statement (writeOne).
    if (this.d.events.sinks.length === 0 && batch.every((e) => e.item.key === undefined && e.item.messages.length === 1)) return this.writeOne(batch, refuse);
    await this.d.tx('enqueue', async (c) => {
      const given = batch.flatMap((e) => e.item.messages.map((m) => m.id));
      const taken = new Set(given.length ? (await c.query<{ id: string }>('SELECT id FROM messages WHERE id = ANY($1)', [given])).rows.map((r) => r.id) : []);
      const seen = new Set<MessageId>();
      let units = batch.filter((e) => {
        const dup = e.item.messages.find((m) => taken.has(m.id) || seen.has(m.id));
        for (const m of e.item.messages) seen.add(m.id);
        if (dup) refuse(e, new HalcyonError('HAL_ERR_QUEUE_WRITE', `message id ${dup.id} already in the queue`));
        return !dup;
      });
      // Keys first, in one order on every node (two batches claiming the same keys never deadlock): a unit
      // whose key is held refuses alone, before any of its rows is written.
      const keyed = units.filter((e) => e.item.key).sort((a, b) => keyOrder(a.item.key!, b.item.key!));
      const lost = new Set<Entry<EnqueueUnit>>();
      for (const e of keyed) {
        if (await claimKey(c, e.item.key!)) continue;
        lost.add(e);
        refuse(e, new HalcyonError('HAL_ERR_IDEMPOTENCY_TAKEN', e.item.key!.key));
      }
      units = units.filter((e) => !lost.has(e));
      const items = units.flatMap((e) => e.item.messages);
      if (items.length === 0) return;
      const now = this.d.clock();
      const facts = items.map((m) => factsOf(m));
      await c.query(`INSERT INTO messages (id, sender, params, received_at, size, trace, dsn_for, event_facts)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::integer[], $6::text[], $7::text[], $8::text[])`, [
        items.map((m) => m.id), items.map((m) => m.sender), items.map((m) => JSON.stringify(m.params)),
        items.map((m) => m.receivedAt), items.map((m) => m.body.length), items.map((m) => JSON.stringify(m.trace)),
        items.map((m) => m.dsnFor ?? null), facts.map((f) => JSON.stringify(f)),
      ]);
      await c.query('INSERT INTO bodies (message_id, data) SELECT * FROM unnest($1::text[], $2::bytea[])',
        [items.map((m) => m.id), items.map((m) => m.body)]);
      const rcpts = items.flatMap((m) => m.recipients.map((r) => ({ id: m.id, r, tenant: m.tenant ?? '' })));
      await c.query(`INSERT INTO recipients (message_id, address, domain, orcpt, notify, destination, tenant, state, attempts, next_attempt_at, updated_at)
        SELECT t.m, t.a, t.d, t.o, t.n, t.dest, t.tenant, 'queued', 0, $7, $7
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::text[]) WITH ORDINALITY AS t(m, a, d, o, n, dest, tenant, ord)
        ORDER BY t.ord`, [
        rcpts.map((x) => x.id), rcpts.map((x) => x.r.address), rcpts.map((x) => domainOf(x.r.address)), rcpts.map((x) => x.r.orcpt ?? null),
        rcpts.map((x) => (x.r.notify !== undefined ? JSON.stringify(x.r.notify) : null)), rcpts.map((x) => x.r.destination), now,
        rcpts.map((x) => x.tenant),
      ]);
      if (this.d.events.sinks.length > 0) {
        const reports = await messageFacts(c, items.flatMap((m) => (m.dsnFor === undefined ? [] : [m.dsnFor])));
        await insertOutbox(c, routeEvents(this.d.events, items.flatMap((m, i) =>
          enqueueEvents(this.d.events, now, { queueId: m.id, sender: m.sender, facts: facts[i]! }, m, (about) => reports.get(about)))), now);
      }
    });
  }

  /**
   * A batch of plain enqueues as ONE statement — its own transaction, durable when it resolves (one round
   * trip where BEGIN, the id check, three INSERTs and COMMIT take six): the messages are inserted
   * `ON CONFLICT (id) DO NOTHING`, and the bodies and recipients of those that were, by data-modifying CTEs.
   * An id already stored (or twice in the batch) is refused alone, nothing of it written, as in write().
   */
  private async writeOne(batch: readonly Entry<EnqueueUnit>[], refuse: (e: Entry<EnqueueUnit>, why: Error) => void): Promise<void> {
    const byId = new Map<MessageId, Entry<EnqueueUnit>>();
    for (const e of batch) {
      const id = e.item.messages[0]!.id;
      if (byId.has(id)) refuse(e, new HalcyonError('HAL_ERR_QUEUE_WRITE', `message id ${id} already in the queue`));
      else byId.set(id, e);
    }
    const items = [...byId.values()].map((e) => e.item.messages[0]!);
    if (items.length === 0) return;
    const now = this.d.clock();
    const rcpts = items.flatMap((m) => m.recipients.map((r) => ({ id: m.id, r, tenant: m.tenant ?? '' })));
    const stored = await this.d.one('enqueue', async (c) => (await c.query<{ id: string }>(`WITH m AS (
        INSERT INTO messages (id, sender, params, received_at, size, trace, dsn_for, event_facts)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::integer[], $6::text[], $7::text[], $8::text[])
        ON CONFLICT (id) DO NOTHING RETURNING id),
      b AS (INSERT INTO bodies (message_id, data)
        SELECT t.id, t.data FROM unnest($1::text[], $9::bytea[]) AS t(id, data) WHERE t.id IN (SELECT id FROM m)),
      r AS (INSERT INTO recipients (message_id, address, domain, orcpt, notify, destination, tenant, state, attempts, next_attempt_at, updated_at)
        SELECT t.m, t.a, t.d, t.o, t.n, t.dest, t.tenant, 'queued', 0, $16, $16
        FROM unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $17::text[]) WITH ORDINALITY AS t(m, a, d, o, n, dest, tenant, ord)
        WHERE t.m IN (SELECT id FROM m) ORDER BY t.ord)
      SELECT id FROM m`, [
      items.map((m) => m.id), items.map((m) => m.sender), items.map((m) => JSON.stringify(m.params)),
      items.map((m) => m.receivedAt), items.map((m) => m.body.length), items.map((m) => JSON.stringify(m.trace)),
      items.map((m) => m.dsnFor ?? null), items.map((m) => JSON.stringify(factsOf(m))), items.map((m) => m.body),
      rcpts.map((x) => x.id), rcpts.map((x) => x.r.address), rcpts.map((x) => domainOf(x.r.address)), rcpts.map((x) => x.r.orcpt ?? null),
      rcpts.map((x) => (x.r.notify !== undefined ? JSON.stringify(x.r.notify) : null)), rcpts.map((x) => x.r.destination), now,
      rcpts.map((x) => x.tenant),
    ])).rows);
    const written = new Set(stored.map((r) => r.id));
    for (const [id, e] of byId) if (!written.has(id)) refuse(e, new HalcyonError('HAL_ERR_QUEUE_WRITE', `message id ${id} already in the queue`));
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

  async getForDelivery(id: MessageId): Promise<{ message: MessageRow; body: Buffer } | undefined> {
    return (await this.deliveryReads(id)).get(id);
  }

  /** The deliveries' reads of one event-loop turn in one statement (queue/coalesce): a map by id, each caller takes its own. */
  private readonly deliveryReads = coalesced(async (ids: readonly MessageId[]) => {
    const raws = await this.d.read<RawMessage & { data: Buffer } & Record<string, unknown>>('getForDelivery',
      `SELECT ${MESSAGE_COLUMNS}, b.data FROM messages m JOIN bodies b ON b.message_id = m.id WHERE m.id = ANY($1)`, [[...new Set(ids)]]);
    return new Map(raws.map((raw) => {
      const message = toMessage(raw);
      return [message.id, { message, body: raw.data }] as const;
    }));
  });

  async deleteMessages(ids: readonly MessageId[]): Promise<number> {
    const rows = await this.d.read<{ id: string }>('deleteMessages', 'DELETE FROM messages WHERE id = ANY($1) RETURNING id', [[...ids]]);
    return rows.length;
  }
}

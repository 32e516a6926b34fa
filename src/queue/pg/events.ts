/**
 * queue/pg-events — EventOutbox over the shared PostgreSQL queue
 * (queue/event-outbox): claims with leases (`FOR UPDATE SKIP LOCKED`, so
 * nodes claiming at once take different rows), acknowledgments and retries,
 * and the statements the other parts use to write outbox rows inside their
 * own transactions. The same SQL shapes as queue/sqlite-events.
 *
 * Does not build events (queue/event) nor send them (events/).
 */
import type { MessageFacts, OutboxInsert } from '../event.js';
import type { EventOutbox, OutboxClaim, OutboxDepth, OutboxRow } from '../event-outbox.js';
import type { MessageId } from '../model.js';
import type { PgDb, Sql } from './db.js';
import { toOutboxRow, type RawOutbox } from '../rows.js';

/** Writes outbox rows; call it inside the transaction of the change they report. */
export async function insertOutbox(c: Sql, rows: readonly OutboxInsert[], now: number): Promise<void> {
  if (rows.length === 0) return;
  await c.query(`INSERT INTO event_outbox (sink, event_id, type, body, created_at, next_attempt_at)
    SELECT t.s, t.e, t.t, t.b, $5, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(s, e, t, b, ord)
    ORDER BY t.ord`, [rows.map((r) => r.sink), rows.map((r) => r.eventId), rows.map((r) => r.type), rows.map((r) => r.body), now]);
}

/** The facts of these messages, by id (for the events of their recipients). */
export async function messageFacts(c: Sql, ids: readonly MessageId[]): Promise<Map<MessageId, MessageFacts>> {
  if (ids.length === 0) return new Map();
  const { rows } = await c.query<MessageFacts>('SELECT id, sender, event_facts FROM messages WHERE id = ANY($1)', [[...ids]]);
  return new Map(rows.map((r) => [r.id, r]));
}

export class PgEventOutbox implements EventOutbox {
  constructor(private readonly d: PgDb) {}

  async claimEvents(sink: string, c: OutboxClaim): Promise<OutboxRow[]> {
    const raws = await this.d.read<RawOutbox>('claimEvents', `UPDATE event_outbox SET lease_owner = $3, lease_until = $4
      WHERE id IN (SELECT id FROM event_outbox WHERE sink = $1 AND next_attempt_at <= $2
        AND (lease_until IS NULL OR lease_until <= $2) ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED)
      RETURNING id, event_id, type, body, created_at, attempts`, [sink, c.now, c.owner, c.leaseUntil, c.limit]);
    return raws.map(toOutboxRow).sort((a, b) => a.id - b.id);
  }

  async ackEvents(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    return (await this.d.read('ackEvents', 'DELETE FROM event_outbox WHERE id = ANY($1) RETURNING id', [[...ids]])).length;
  }

  async retryEvents(ids: readonly number[], owner: string, nextAttemptAt: number): Promise<number> {
    if (ids.length === 0) return 0;
    return (await this.d.read('retryEvents', `UPDATE event_outbox SET next_attempt_at = $1, attempts = attempts + 1, lease_owner = NULL, lease_until = NULL
      WHERE id = ANY($2) AND lease_owner = $3 RETURNING id`, [nextAttemptAt, [...ids], owner])).length;
  }

  async outboxDepth(): Promise<OutboxDepth[]> {
    const rows = await this.d.read<{ sink: string; depth: number; leased: number; oldest: number; max_attempts: number }>('outboxDepth',
      `SELECT sink, COUNT(*)::int AS depth, SUM(CASE WHEN lease_until > $1 THEN 1 ELSE 0 END)::int AS leased,
        MIN(created_at) AS oldest, MAX(attempts) AS max_attempts FROM event_outbox GROUP BY sink ORDER BY sink`, [this.d.clock()]);
    return rows.map((r) => ({ sink: r.sink, depth: r.depth, leased: r.leased, oldestAt: r.oldest, maxAttempts: r.max_attempts }));
  }
}

/**
 * queue/sqlite-events — EventOutbox over the SQLite queue (queue/event-outbox):
 * claims with leases, acknowledgments and retries of the event outbox rows,
 * and the one statement both of the other parts use to write them inside
 * their own transactions (`insertOutbox`).
 *
 * Each claim is one IMMEDIATE transaction (sqlite-db), so two processes on one
 * file never claim the same row. Does not build events (queue/event) nor send
 * them (events/).
 */
import type { MessageFacts, OutboxInsert } from '../event.js';
import type { MessageId } from '../model.js';
import type { EventOutbox, OutboxClaim, OutboxDepth, OutboxRow } from '../event-outbox.js';
import { toOutboxRow, type RawOutbox } from '../rows.js';
import type { SqliteDb } from './db.js';


/** Writes outbox rows; call it inside the transaction of the change they report. */
export function insertOutbox(d: SqliteDb, rows: readonly OutboxInsert[], now: number): void {
  if (rows.length === 0) return;
  const ins = d.st(`INSERT INTO event_outbox (sink, event_id, type, body, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)`);
  for (const r of rows) ins.run(r.sink, r.eventId, r.type, r.body, now, now);
}

/** The facts of these messages, by id (for the events of their recipients' outcomes). */
export function messageFacts(d: SqliteDb, ids: readonly MessageId[]): Map<MessageId, MessageFacts> {
  if (ids.length === 0) return new Map();
  const rows = d.st('SELECT id, sender, event_facts FROM messages WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(ids)) as MessageFacts[];
  return new Map(rows.map((r) => [r.id, r]));
}

export class SqliteEventOutbox implements EventOutbox {
  constructor(private readonly d: SqliteDb) {}

  async claimEvents(sink: string, c: OutboxClaim): Promise<OutboxRow[]> {
    return this.d.write('claimEvents', () => {
      const raws = this.d.st(`UPDATE event_outbox SET lease_owner = @owner, lease_until = @until
        WHERE id IN (SELECT id FROM event_outbox WHERE sink = @sink AND next_attempt_at <= @now
          AND (lease_until IS NULL OR lease_until <= @now) ORDER BY id LIMIT @limit)
        RETURNING id, event_id, type, body, created_at, attempts`)
        .all({ sink, now: c.now, owner: c.owner, until: c.leaseUntil, limit: c.limit }) as RawOutbox[];
      return raws.map(toOutboxRow).sort((a, b) => a.id - b.id);
    });
  }

  async ackEvents(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.d.write('ackEvents', () =>
      this.d.st('DELETE FROM event_outbox WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(ids)).changes);
  }

  async retryEvents(ids: readonly number[], owner: string, nextAttemptAt: number): Promise<number> {
    if (ids.length === 0) return 0;
    return this.d.write('retryEvents', () => this.d.st(`UPDATE event_outbox SET next_attempt_at = ?, attempts = attempts + 1,
        lease_owner = NULL, lease_until = NULL
      WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ?`).run(nextAttemptAt, JSON.stringify(ids), owner).changes);
  }

  async outboxDepth(): Promise<OutboxDepth[]> {
    const now = this.d.clock();
    const rows = this.d.st(`SELECT sink, COUNT(*) AS depth, SUM(CASE WHEN lease_until > ? THEN 1 ELSE 0 END) AS leased,
        MIN(created_at) AS oldest, MAX(attempts) AS max_attempts FROM event_outbox GROUP BY sink ORDER BY sink`)
      .all(now) as { sink: string; depth: number; leased: number; oldest: number; max_attempts: number }[];
    return rows.map((r) => ({ sink: r.sink, depth: r.depth, leased: r.leased, oldestAt: r.oldest, maxAttempts: r.max_attempts }));
  }
}

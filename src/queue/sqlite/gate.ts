/**
 * queue/sqlite/gate — DestinationGate over the SQLite queue: destination rows
 * (health, generation, learned limits), leased connection slots and rate
 * buckets, in the same file as the recipients.
 *
 * Each call is one IMMEDIATE transaction, so the read of the row and of the
 * live slots and the slot it grants are one atomic step, also for several
 * processes on one file. The decision is queue/destination-gate's pure
 * `decideGrant`, the same for every implementation.
 */
import type { DestinationLimits, DestinationRow, DestinationState } from '../model.js';
import {
  decideGrant, mergeLimits, takeFromBucket, type AcquireRequest, type Bucket, type DestinationGate, type DestinationInfoRow, type Grant, type TokenResult, type TransitionResult,
} from '../destination-gate.js';
import type { SqliteDb } from './db.js';
import { DESTINATION_COLUMNS, toDestination, type RawDestination } from '../rows.js';
import { FINAL_SQL } from './recipients.js';

export class SqliteDestinationGate implements DestinationGate {
  constructor(private readonly d: SqliteDb) {}

  private row(key: string): DestinationRow | undefined {
    const raw = this.d.st(`SELECT ${DESTINATION_COLUMNS} FROM destinations WHERE key = ?`).get(key) as RawDestination | undefined;
    return raw && toDestination(raw);
  }

  async acquire(req: AcquireRequest): Promise<Grant> {
    return this.d.write('acquire', (): Grant => {
      const row = this.row(req.destination);
      const live = this.d.st(`SELECT COUNT(*) AS n, COALESCE(MAX(probe), 0) AS probing, MIN(lease_until) AS earliest
        FROM destination_slots WHERE destination = ? AND lease_until > ?`).get(req.destination, req.now) as { n: number; probing: number; earliest: number | null };
      const decision = decideGrant(row, { count: live.n, probing: live.probing !== 0, earliestUntil: live.earliest ?? undefined }, req.now, req.maxConnections);
      if (decision.kind === 'wait') return decision;
      const slot = this.d.st(`INSERT INTO destination_slots (destination, node, probe, lease_until) VALUES (?, ?, ?, ?) RETURNING id`).pluck()
        .get(req.destination, req.node, decision.kind === 'probe' ? 1 : 0, req.leaseUntil) as number;
      return { kind: decision.kind, slot, generation: row?.generation ?? 0, row };
    });
  }

  async renewSlot(slot: number, leaseUntil: number): Promise<boolean> {
    return this.d.write('renewSlot', () => this.d.st('UPDATE destination_slots SET lease_until = ? WHERE id = ?').run(leaseUntil, slot).changes > 0);
  }

  async releaseSlot(slot: number): Promise<void> {
    this.d.write('releaseSlot', () => this.d.st('DELETE FROM destination_slots WHERE id = ?').run(slot));
  }

  async releaseNodeSlots(node: string): Promise<number> {
    return this.d.write('releaseNodeSlots', () => this.d.st('DELETE FROM destination_slots WHERE node = ?').run(node).changes);
  }

  async releaseExpiredSlots(now: number): Promise<number> {
    return this.d.write('releaseExpiredSlots', () => this.d.st('DELETE FROM destination_slots WHERE lease_until <= ?').run(now).changes);
  }

  async transition(key: string, expected: number, next: DestinationState): Promise<TransitionResult> {
    return this.d.write('transition', (): TransitionResult => {
      const current = this.row(key);
      if ((current?.generation ?? 0) !== expected) return { applied: false, row: current };
      this.upsert({ ...next, key }, expected + 1, 'keep');
      return { applied: true, row: this.row(key) };
    });
  }

  async putDestination(row: DestinationState): Promise<void> {
    this.d.write('putDestination', () => this.upsert(row, (this.row(row.key)?.generation ?? 0) + 1));
  }

  async putLimits(key: string, limits: DestinationLimits, now: number): Promise<void> {
    // Read, merge (queue/destination-gate's mergeLimits) and write in one IMMEDIATE transaction: what another
    // node (process) wrote a moment before is kept. A new row is healthy at generation 0 (what an absent row
    // counts as), so no compare-and-set is voided; an existing row keeps its health and generation.
    this.d.write('putLimits', () => {
      const merged = mergeLimits(this.row(key)?.limits, limits, now);
      this.d.st(`INSERT INTO destinations (key, health, backoff_until, backoff_ms, consecutive_failures, last_error, updated_at, generation, limits)
        VALUES (@key, 'ok', 0, 0, 0, NULL, @now, 0, @limits)
        ON CONFLICT(key) DO UPDATE SET limits = excluded.limits`).run({ key, now, limits: merged === undefined ? null : JSON.stringify(merged) });
    });
  }

  /** `limits`: 'keep' leaves an existing row's limits as they are (a transition), 'set' writes the row's (an administrator). */
  private upsert(row: DestinationState, generation: number, limits: 'keep' | 'set' = 'set'): void {
    this.d.st(`INSERT INTO destinations (key, health, backoff_until, backoff_ms, consecutive_failures, last_error, updated_at, generation, limits)
      VALUES (@key, @health, @backoffUntil, @backoffMs, @consecutiveFailures, @lastError, @updatedAt, @generation, @limits)
      ON CONFLICT(key) DO UPDATE SET health = excluded.health, backoff_until = excluded.backoff_until,
        backoff_ms = excluded.backoff_ms, consecutive_failures = excluded.consecutive_failures,
        last_error = excluded.last_error, updated_at = excluded.updated_at, generation = excluded.generation${limits === 'set' ? `,
        limits = excluded.limits` : ''}`)
      .run({
        key: row.key, health: row.health, backoffUntil: row.backoffUntil, backoffMs: row.backoffMs,
        consecutiveFailures: row.consecutiveFailures, lastError: row.lastError ?? null, updatedAt: row.updatedAt,
        generation, limits: row.limits !== undefined ? JSON.stringify(row.limits) : null,
      });
  }

  async takeToken(key: string, now: number, rate: { readonly count: number; readonly perMs: number }): Promise<TokenResult> {
    return this.d.write('takeToken', (): TokenResult => {
      const stored = this.d.st('SELECT tokens, at FROM destination_tokens WHERE destination = ?').get(key) as Bucket | undefined;
      const { bucket, result } = takeFromBucket(stored, now, rate);
      this.d.st(`INSERT INTO destination_tokens (destination, tokens, at) VALUES (?, ?, ?)
        ON CONFLICT(destination) DO UPDATE SET tokens = excluded.tokens, at = excluded.at`).run(key, bucket.tokens, bucket.at);
      return result;
    });
  }

  async getDestination(key: string): Promise<DestinationRow | undefined> {
    return this.row(key);
  }

  async listRows(prefix: string): Promise<DestinationRow[]> {
    const raws = this.d.st(`SELECT ${DESTINATION_COLUMNS} FROM destinations WHERE substr(key, 1, length(@prefix)) = @prefix ORDER BY key`).all({ prefix }) as RawDestination[];
    return raws.map(toDestination);
  }

  async listDestinations(): Promise<DestinationInfoRow[]> {
    const now = this.d.clock();
    const rows = this.d.st(`WITH q AS (SELECT destination AS key, COUNT(*) AS queued FROM recipients
          WHERE state NOT IN ${FINAL_SQL} GROUP BY destination),
        s AS (SELECT destination AS key, COUNT(*) AS connections FROM destination_slots WHERE lease_until > @now GROUP BY destination),
        k AS (SELECT key FROM destinations UNION SELECT key FROM q UNION SELECT key FROM s)
      SELECT k.key AS key, COALESCE(d.health, 'ok') AS health, COALESCE(d.backoff_until, 0) AS backoff_until,
        COALESCE(d.backoff_ms, 0) AS backoff_ms, COALESCE(d.consecutive_failures, 0) AS consecutive_failures,
        d.last_error AS last_error, COALESCE(d.updated_at, @now) AS updated_at, COALESCE(d.generation, 0) AS generation,
        d.limits AS limits, COALESCE(q.queued, 0) AS queued, COALESCE(s.connections, 0) AS connections
      FROM k LEFT JOIN destinations d ON d.key = k.key LEFT JOIN q ON q.key = k.key LEFT JOIN s ON s.key = k.key
      ORDER BY k.key`).all({ now }) as (RawDestination & { queued: number; connections: number })[];
    return rows.map((raw) => ({ ...toDestination(raw), queued: raw.queued, connections: raw.connections }));
  }
}

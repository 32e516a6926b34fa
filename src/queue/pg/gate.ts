/**
 * queue/pg/gate — DestinationGate over the shared PostgreSQL queue: the same
 * rows as on SQLite (destinations, destination_slots, destination_tokens),
 * shared by every node.
 *
 * Each call that decides is one transaction holding a transaction-scoped
 * advisory lock on the destination key, so the read of the row and of the
 * live slots and the slot it grants are one atomic step across nodes (a row
 * lock would not do: the destination may have no row yet). The decisions are
 * queue/destination-gate's pure functions, as on SQLite: `decideGrant`,
 * `mergeLimits` (learned limits) and `takeFromBucket` (the shared rate).
 * An acquire sends BEGIN, the lock and its two reads at once (the pool's
 * clients pipeline): three round trips where six were, and the lock held
 * for two of them.
 */
import type pg from 'pg';
import {
  decideGrant, mergeLimits, takeFromBucket, type AcquireRequest, type DestinationGate, type DestinationInfoRow, type Grant, type TokenResult, type TransitionResult,
} from '../destination-gate.js';
import type { DestinationLimits, DestinationRow, DestinationState } from '../model.js';
import type { PgDb } from './db.js';
import { DESTINATION_COLUMNS, toDestination, type RawDestination } from '../rows.js';
import { toWarmupCount, utcDay, warmupSql, warmupTake, type RawWarmupCount, type WarmupCount, type WarmupRequest, type WarmupTake } from '../warmup.js';

const WARMUP = warmupSql('pg');

const FINAL_SQL = `('delivered','failed','expired')`;
type Raw = RawDestination & Record<string, unknown>;

async function lockKey(c: pg.PoolClient, key: string): Promise<void> {
  await c.query(`SELECT pg_advisory_xact_lock(hashtext('halcyon-destination:' || $1))`, [key]);
}

async function rowOf(c: pg.PoolClient, key: string): Promise<DestinationRow | undefined> {
  const { rows } = await c.query<Raw>(`SELECT ${DESTINATION_COLUMNS} FROM destinations WHERE key = $1`, [key]);
  return rows[0] && toDestination(rows[0]);
}

/** `limits`: 'keep' leaves an existing row's limits as they are (a transition), 'set' writes the row's (an administrator). */
async function upsert(c: pg.PoolClient, row: DestinationState, generation: number, limits: 'keep' | 'set' = 'set'): Promise<void> {
  await c.query(`INSERT INTO destinations (key, health, backoff_until, backoff_ms, consecutive_failures, last_error, updated_at, generation, limits)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (key) DO UPDATE SET health = EXCLUDED.health, backoff_until = EXCLUDED.backoff_until, backoff_ms = EXCLUDED.backoff_ms,
      consecutive_failures = EXCLUDED.consecutive_failures, last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at,
      generation = EXCLUDED.generation${limits === 'set' ? ', limits = EXCLUDED.limits' : ''}`,
  [row.key, row.health, row.backoffUntil, row.backoffMs, row.consecutiveFailures, row.lastError ?? null, row.updatedAt, generation,
    row.limits !== undefined ? JSON.stringify(row.limits) : null]);
}

export class PgDestinationGate implements DestinationGate {
  constructor(private readonly d: PgDb) {}

  acquire(req: AcquireRequest): Promise<Grant> {
    return this.d.tx('acquire', async (c): Promise<Grant> => {
      // The lock and the two reads are sent together (pipelined with BEGIN: one round trip); the server runs them
      // in order, and each read takes its snapshot after the lock is granted (READ COMMITTED: one per statement).
      const locked = lockKey(c, req.destination);
      const rowRead = rowOf(c, req.destination);
      const slotsRead = c.query<{ n: number; probing: number; earliest: number | null }>(`SELECT COUNT(*)::bigint AS n,
          COALESCE(MAX(probe), 0)::bigint AS probing, MIN(lease_until) AS earliest
        FROM destination_slots WHERE destination = $1 AND lease_until > $2`, [req.destination, req.now]);
      const [, row, { rows }] = await Promise.all([locked, rowRead, slotsRead]);
      const live = rows[0]!;
      const decision = decideGrant(row, { count: live.n, probing: live.probing !== 0, earliestUntil: live.earliest ?? undefined }, req.now, req.maxConnections);
      if (decision.kind === 'wait') return decision;
      const slot = await c.query<{ id: number }>('INSERT INTO destination_slots (destination, node, probe, lease_until) VALUES ($1, $2, $3, $4) RETURNING id',
        [req.destination, req.node, decision.kind === 'probe' ? 1 : 0, req.leaseUntil]);
      return { kind: decision.kind, slot: slot.rows[0]!.id, generation: row?.generation ?? 0, row };
    });
  }

  async renewSlot(slot: number, leaseUntil: number): Promise<boolean> {
    return (await this.d.read('renewSlot', 'UPDATE destination_slots SET lease_until = $1 WHERE id = $2 RETURNING id', [leaseUntil, slot])).length > 0;
  }

  async releaseSlot(slot: number): Promise<void> {
    await this.d.read('releaseSlot', 'DELETE FROM destination_slots WHERE id = $1', [slot]);
  }

  async releaseNodeSlots(node: string): Promise<number> {
    return (await this.d.read('releaseNodeSlots', 'DELETE FROM destination_slots WHERE node = $1 RETURNING id', [node])).length;
  }

  async releaseExpiredSlots(now: number): Promise<number> {
    return (await this.d.read('releaseExpiredSlots', 'DELETE FROM destination_slots WHERE lease_until <= $1 RETURNING id', [now])).length;
  }

  transition(key: string, expected: number, next: DestinationState): Promise<TransitionResult> {
    return this.d.tx('transition', async (c): Promise<TransitionResult> => {
      await lockKey(c, key);
      const current = await rowOf(c, key);
      if ((current?.generation ?? 0) !== expected) return { applied: false, row: current };
      await upsert(c, { ...next, key }, expected + 1, 'keep');
      return { applied: true, row: await rowOf(c, key) };
    });
  }

  async putDestination(row: DestinationState): Promise<void> {
    await this.d.tx('putDestination', async (c) => {
      await lockKey(c, row.key);
      await upsert(c, row, ((await rowOf(c, row.key))?.generation ?? 0) + 1);
    });
  }

  async putLimits(key: string, limits: DestinationLimits, now: number): Promise<void> {
    // Read, merge (queue/destination-gate's mergeLimits, as on SQLite) and write under the key's advisory lock:
    // two nodes writing at once both keep what they learned. Only the limits change: health and generation stay
    // (a new row is healthy at generation 0, what an absent row counts as).
    await this.d.tx('putLimits', async (c) => {
      await lockKey(c, key);
      const merged = mergeLimits((await rowOf(c, key))?.limits, limits, now);
      await c.query(`INSERT INTO destinations (key, health, backoff_until, backoff_ms, consecutive_failures, last_error, updated_at, generation, limits)
        VALUES ($1, 'ok', 0, 0, 0, NULL, $2, 0, $3) ON CONFLICT (key) DO UPDATE SET limits = EXCLUDED.limits`,
      [key, now, merged === undefined ? null : JSON.stringify(merged)]);
    });
  }

  takeToken(key: string, now: number, rate: { readonly count: number; readonly perMs: number }): Promise<TokenResult> {
    return this.d.tx('takeToken', async (c): Promise<TokenResult> => {
      await lockKey(c, key);
      const { rows } = await c.query<{ tokens: number; at: number }>('SELECT tokens, at FROM destination_tokens WHERE destination = $1', [key]);
      const { bucket, result } = takeFromBucket(rows[0], now, rate);
      await c.query(`INSERT INTO destination_tokens (destination, tokens, at) VALUES ($1, $2, $3)
        ON CONFLICT (destination) DO UPDATE SET tokens = EXCLUDED.tokens, at = EXCLUDED.at`, [key, bucket.tokens, bucket.at]);
      return result;
    });
  }

  takeWarmup(req: WarmupRequest): Promise<WarmupTake> {
    return this.d.tx('takeWarmup', async (c): Promise<WarmupTake> => {
      // One lock per source: its first day and each scope's count are read and written by one node at a time.
      await lockKey(c, `warmup:${req.source}`);
      const today = utcDay(req.now);
      const first = (await c.query<{ first_day: number }>(WARMUP.firstDay, [req.source])).rows[0];
      const firstDay = first ? Number(first.first_day) : undefined;
      const row = (await c.query<{ sent: number }>(WARMUP.sent, [req.source, req.scope, today])).rows[0];
      const r = warmupTake({ firstDay, sent: row ? Number(row.sent) : 0 }, req);
      if (firstDay === undefined) await c.query(WARMUP.setFirstDay, [req.source, r.firstDay]);
      if (r.take.cap !== undefined) {
        await c.query(WARMUP.setSent, [req.source, req.scope, today, r.sent]);
        await c.query(WARMUP.forget, [req.source, req.scope, today - 1]);
      }
      return r.take;
    });
  }

  async warmupCounts(day: number): Promise<WarmupCount[]> {
    return (await this.d.read<RawWarmupCount & Record<string, unknown>>('warmupCounts', WARMUP.counts, [day])).map(toWarmupCount);
  }

  async getDestination(key: string): Promise<DestinationRow | undefined> {
    const [raw] = await this.d.read<Raw>('getDestination', `SELECT ${DESTINATION_COLUMNS} FROM destinations WHERE key = $1`, [key]);
    return raw && toDestination(raw);
  }

  async listRows(prefix: string): Promise<DestinationRow[]> {
    return (await this.d.read<Raw>('listRows', `SELECT ${DESTINATION_COLUMNS} FROM destinations WHERE left(key, length($1)) = $1 ORDER BY key COLLATE "C"`, [prefix])).map(toDestination);
  }

  async listDestinations(): Promise<DestinationInfoRow[]> {
    const rows = await this.d.read<Raw & { queued: number; connections: number }>('listDestinations', `WITH q AS (SELECT destination AS key, COUNT(*)::bigint AS queued
          FROM recipients WHERE state NOT IN ${FINAL_SQL} GROUP BY destination),
        s AS (SELECT destination AS key, COUNT(*)::bigint AS connections FROM destination_slots WHERE lease_until > $1 GROUP BY destination),
        k AS (SELECT key FROM destinations UNION SELECT key FROM q UNION SELECT key FROM s)
      SELECT k.key AS key, COALESCE(d.health, 'ok') AS health, COALESCE(d.backoff_until, 0) AS backoff_until,
        COALESCE(d.backoff_ms, 0) AS backoff_ms, COALESCE(d.consecutive_failures, 0) AS consecutive_failures,
        d.last_error AS last_error, COALESCE(d.updated_at, $1) AS updated_at, COALESCE(d.generation, 0) AS generation,
        d.limits AS limits, COALESCE(q.queued, 0) AS queued, COALESCE(s.connections, 0) AS connections
      FROM k LEFT JOIN destinations d ON d.key = k.key LEFT JOIN q ON q.key = k.key LEFT JOIN s ON s.key = k.key
      ORDER BY k.key COLLATE "C"`, [this.d.clock()]);
    return rows.map((raw) => ({ ...toDestination(raw), queued: raw.queued, connections: raw.connections }));
  }
}

/**
 * queue/pg/idempotency — the injection API's idempotency keys
 * (queue/idempotency) over the shared PostgreSQL queue: the lookup of one
 * key and the expiry of old ones, for every node. Key rows are written only
 * by pg/messages' enqueueGroup (`claimKey`), in the commit of the messages
 * they answer for.
 */
import { IDEMPOTENCY_COLUMNS, IDEMPOTENCY_TTL_MS, idempotencyRow, toIdempotency, type IdempotencyRecord, type IdempotencyStore, type RawIdempotency } from '../idempotency.js';
import type { PgDb, Sql } from './db.js';

/**
 * Inserts the key row inside the caller's transaction; false when a young row of the key is there already.
 * A row another node inserted and has not committed yet makes this wait (the primary key's lock) until that
 * transaction ends: it then counts as there (committed) or not (rolled back). An expired row is replaced.
 */
export async function claimKey(c: Sql, k: IdempotencyRecord): Promise<boolean> {
  const r = idempotencyRow(k);
  const res = await c.query(`INSERT INTO idempotency_keys (${IDEMPOTENCY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (token, key) DO UPDATE SET body_hash = EXCLUDED.body_hash, state = EXCLUDED.state, status = EXCLUDED.status,
      response = EXCLUDED.response, created_at = EXCLUDED.created_at
    WHERE idempotency_keys.created_at < $8 RETURNING key`,
  [r.token, r.key, r.body_hash, r.state, r.status, r.response, r.created_at, k.createdAt - IDEMPOTENCY_TTL_MS]);
  return (res.rowCount ?? 0) > 0;
}

export class PgIdempotencyStore implements IdempotencyStore {
  constructor(private readonly d: PgDb) {}

  async getIdempotency(token: string, key: string, since: number): Promise<IdempotencyRecord | undefined> {
    const [raw] = await this.d.read<RawIdempotency & Record<string, unknown>>('getIdempotency',
      `SELECT ${IDEMPOTENCY_COLUMNS} FROM idempotency_keys WHERE token = $1 AND key = $2 AND created_at >= $3`, [token, key, since]);
    return raw && toIdempotency(raw);
  }

  async expireIdempotency(before: number, limit: number): Promise<number> {
    const rows = await this.d.read<{ key: string }>('expireIdempotency', `DELETE FROM idempotency_keys WHERE ctid IN
      (SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2) RETURNING key`, [before, limit]);
    return rows.length;
  }
}

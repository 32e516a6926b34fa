/**
 * queue/sqlite/idempotency — the injection API's idempotency keys
 * (queue/idempotency) over the SQLite queue: the lookup of one key and the
 * expiry of old ones. Key rows are written only by sqlite/messages'
 * enqueueGroup, in the commit of the messages they answer for.
 */
import { IDEMPOTENCY_COLUMNS, toIdempotency, type IdempotencyRecord, type IdempotencyStore, type RawIdempotency } from '../idempotency.js';
import type { SqliteDb } from './db.js';

export class SqliteIdempotencyStore implements IdempotencyStore {
  constructor(private readonly d: SqliteDb) {}

  async getIdempotency(token: string, key: string, since: number): Promise<IdempotencyRecord | undefined> {
    const raw = this.d.st(`SELECT ${IDEMPOTENCY_COLUMNS} FROM idempotency_keys WHERE token = ? AND key = ? AND created_at >= ?`)
      .get(token, key, since) as RawIdempotency | undefined;
    return raw && toIdempotency(raw);
  }

  async expireIdempotency(before: number, limit: number): Promise<number> {
    return this.d.write('expireIdempotency', () => this.d.st(`DELETE FROM idempotency_keys WHERE (token, key) IN
      (SELECT token, key FROM idempotency_keys WHERE created_at < ? LIMIT ?)`).run(before, limit).changes);
  }
}

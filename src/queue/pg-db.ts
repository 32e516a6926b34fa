/**
 * queue/pg-db — the PostgreSQL queue's connection pool, shared by its three
 * parts (pg-messages, pg-recipients, pg-gate): opening with
 * synchronous_commit on (a resolved write means durable, as on SQLite), the
 * migrations under an advisory lock, and a helper for one transaction.
 *
 * bigint columns are parsed to numbers: every one holds epoch ms, a count or
 * a serial id, all far below 2^53. Any failure of a write becomes
 * HAL_ERR_QUEUE_WRITE with the cause kept. Holds no queue logic.
 */
import pg from 'pg';
import { HalcyonError } from '../errors.js';
import { MIGRATION_LOCK, PG_MIGRATIONS, PG_SCHEMA_VERSION } from './pg-schema.js';

pg.types.setTypeParser(20 /* int8 */, (v: string) => Number(v));

export interface PgQueueOptions {
  /** postgres://user@host:port/database */
  readonly url: string;
  readonly clock?: () => number;
  /** Connections in the pool (default 10). */
  readonly poolSize?: number;
}

export type Sql = pg.PoolClient | pg.Pool;

export function createPool(opts: PgQueueOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url, max: opts.poolSize ?? 10,
    // Explicit, whatever the server's default: a 250 means the commit reached the WAL on disk.
    options: '-c synchronous_commit=on',
    connectionTimeoutMillis: 5_000,
  });
  // An idle client whose server went away must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return pool;
}

/** Creates or migrates the schema; nodes starting together wait for each other on the advisory lock. Returns the version. */
export async function migratePg(pool: pg.Pool): Promise<{ from: number; to: number }> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS halcyon_schema_version (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
    const { rows } = await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM halcyon_schema_version');
    const from = rows[0]?.v ?? 0;
    if (from > PG_SCHEMA_VERSION) {
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `queue schema version ${from} is newer than this Halcyon (${PG_SCHEMA_VERSION})`);
    }
    for (let v = from + 1; v <= PG_SCHEMA_VERSION; v++) {
      await c.query(PG_MIGRATIONS[v - 1]!);
      await c.query('INSERT INTO halcyon_schema_version (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
    }
    await c.query('COMMIT');
    return { from, to: PG_SCHEMA_VERSION };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `cannot migrate the queue: ${String(err)}`, { cause: err });
  } finally {
    c.release();
  }
}

/** The pool the three parts share. */
export class PgDb {
  closed = false;
  constructor(readonly pool: pg.Pool, readonly clock: () => number) {}

  /** A read (any failure: HAL_ERR_QUEUE_WRITE, so callers see one kind of queue trouble). */
  async read<T extends pg.QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<T[]> {
    if (this.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: queue is closed`);
    try {
      return (await this.pool.query<T>(sql, params)).rows;
    } catch (err) {
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: ${String(err)}`, { cause: err });
    }
  }

  /** One transaction; committed (durably) when it resolves, rolled back when fn throws. */
  async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: queue is closed`);
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: ${String(err)}`, { cause: err });
    }
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: ${String(err)}`, { cause: err });
    } finally {
      c.release();
    }
  }
}

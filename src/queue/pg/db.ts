/**
 * queue/pg/db — the PostgreSQL queue's connection pool, shared by its three
 * parts (pg/messages, pg/recipients, pg/gate): opening with
 * synchronous_commit on (a resolved write means durable, as on SQLite), the
 * migrations under an advisory lock, and a helper for one transaction.
 *
 * bigint columns are parsed to numbers: every one holds epoch ms, a count or
 * a serial id, all far below 2^53. A failure that means the database cannot
 * be reached (`isConnectionLoss`) becomes HAL_ERR_QUEUE_UNAVAILABLE and marks
 * the node's QueueHealth unavailable (its probe brings it back); any other
 * failure becomes HAL_ERR_QUEUE_WRITE. The cause is kept. Holds no queue logic.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { HalcyonError } from '../../errors.js';
import type { QueueHealth } from '../health.js';
import { MIGRATION_LOCK, PG_MIGRATIONS, PG_SCHEMA_VERSION, PG_VERSIONS } from './schema.js';
import { NO_EVENT_ROUTES, type EventRoutes } from '../event.js';

pg.types.setTypeParser(20 /* int8 */, (v: string) => Number(v));

export interface PgQueueOptions {
  /** postgres://user@host:port/database */
  readonly url: string;
  readonly clock?: () => number;
  /** Connections in the pool (default 10). */
  readonly poolSize?: number;
  /** Where events go (queue/event): none → the outbox gets no rows. */
  readonly events?: EventRoutes;
  /** Statements with parameters as named prepared statements (default true; false behind PgBouncer's transaction pooling). */
  readonly preparedStatements?: boolean;
}

export type Sql = pg.PoolClient | pg.Pool;

/** Statement names by SQL text: the same text always gets the same name (a short hash of it). */
const names = new Map<string, string>();
function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `h${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * A client that sends every query with parameters as a named prepared statement: the server parses and
 * analyses each text once per connection instead of at every call (the queue's statements are fixed texts
 * with $n parameters; the server replans when the schema changes). Queries without parameters (BEGIN,
 * COMMIT, migrations) go as they are.
 */
class PreparingClient extends pg.Client {
  override query(...args: unknown[]): never {
    const [text, values] = args;
    const call = pg.Client.prototype.query as (...a: unknown[]) => never;
    if (typeof text === 'string' && Array.isArray(values)) return call.call(this, { name: statementName(text), text, values }, ...args.slice(2));
    return call.apply(this, args);
  }
}

export function createPool(opts: PgQueueOptions): pg.Pool {
  const pool = new pg.Pool({
    // Unnamed statements (parsed at every call) where a connection's prepared statements do not last (PgBouncer).
    Client: opts.preparedStatements === false ? pg.Client : PreparingClient,
    connectionString: opts.url, max: opts.poolSize ?? 10,
    // Queries a client is given before the answer to the one before are sent at once (each its own Sync, in order):
    // a transaction's BEGIN goes with its first statement, the gate's lock with its reads (PgDb.tx, pg/gate).
    pipeline: true,
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
  // As in PgDb.tx: a session ended between statements must fail this migration, not the process.
  const onError = () => undefined;
  c.on('error', onError);
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS halcyon_schema_version (version integer PRIMARY KEY, applied_at bigint NOT NULL)');
    const { rows } = await c.query<{ version: number }>('SELECT version FROM halcyon_schema_version');
    const have = new Set(rows.map((r) => r.version));
    const from = Math.max(0, ...have);
    const unknown = [...have].filter((v) => !PG_VERSIONS.includes(v));
    if (unknown.length > 0) {
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `queue schema version ${unknown.join(', ')} is newer than this Halcyon (${PG_VERSIONS.join(', ')})`);
    }
    // Each version this build has and the database lacks, in order (one left free and filled later comes after higher ones).
    for (const v of PG_VERSIONS) {
      if (have.has(v)) continue;
      await c.query(PG_MIGRATIONS[v - 1]!);
      await c.query('INSERT INTO halcyon_schema_version (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
    }
    await c.query('COMMIT');
    return { from, to: PG_SCHEMA_VERSION };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `cannot migrate the queue: ${String(err)}`, { cause: err });
  } finally {
    c.removeListener('error', onError);
    c.release();
  }
}

/** SQLSTATEs that mean the session or the server went away: class 08, and shutdown / crash / starting up (57P01–03). */
const LOST_SQLSTATE = /^(08...|57P0[123])$/;
/** Socket errors on the way to the server. */
const LOST_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT']);
/** What the pg driver and pool say when a connection died or never came (they carry no code). */
const LOST_MESSAGE = /Connection terminated|not queryable|timeout exceeded when trying to connect/;

/**
 * Whether a pg error means the database cannot be reached now (transient: the node waits and probes),
 * rather than a statement that failed on a live connection. Looks through `cause` (the pool wraps).
 */
export function isConnectionLoss(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (LOST_SQLSTATE.test(code) || LOST_ERRNO.has(code))) return true;
    if (LOST_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/**
 * Whether a failed group-commit batch (queue/group-commit) may be written again item by item: its error came
 * from a statement on a live connection (rolled back whole: nothing of it stored), not from a lost one (a
 * commit whose answer was lost may have been made, and must not be made twice).
 */
export const retryable = (err: unknown): boolean =>
  !(err instanceof HalcyonError && err.code === 'HAL_ERR_QUEUE_UNAVAILABLE') && !isConnectionLoss(err);

/**
 * Group-commit batches of one kind (enqueues, outcomes) written at once by a node (queue/group-commit): what is
 * asked while that many are committing waits in an open batch and goes with the next, rather than queueing
 * sealed for one of the pool's connections — batches grow when the pool is the bound. 4 of each kind leaves
 * the pool's other connections to reads, claims and the gate. Lower caps (1, 2) cut commits a little more
 * under heavy load but made each enqueue wait a whole commit more (docs/decisions/0020-pg-group-commit.md).
 */
export const WRITES_IN_FLIGHT = 4;

/** The pool the three parts share. */
export class PgDb {
  closed = false;
  /** `events`: the sinks each state change writes an outbox row for (queue/event). */
  constructor(readonly pool: pg.Pool, readonly clock: () => number, readonly health: QueueHealth, readonly events: EventRoutes = NO_EVENT_ROUTES) {}

  /** A failure as callers see it: unavailable (and the node marked so) or a failed write; one kind of queue trouble each. */
  private trouble(what: string, err: unknown): HalcyonError {
    if (err instanceof HalcyonError) return err;
    if (isConnectionLoss(err)) {
      const e = new HalcyonError('HAL_ERR_QUEUE_UNAVAILABLE', `${what}: ${String(err)}`, { cause: err });
      this.health.lost(e);
      return e;
    }
    return new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: ${String(err)}`, { cause: err });
  }

  /** A read. */
  async read<T extends pg.QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<T[]> {
    if (this.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: queue is closed`);
    try {
      return (await this.pool.query<T>(sql, params)).rows;
    } catch (err) {
      throw this.trouble(what, err);
    }
  }

  /**
   * Work that sends exactly one statement, outside a transaction block: that statement is its own transaction,
   * atomic and durable (synchronous_commit) when it resolves — one round trip where BEGIN … COMMIT take three.
   */
  async one<T>(what: string, fn: (c: Sql) => Promise<T>): Promise<T> {
    if (this.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: queue is closed`);
    try {
      return await fn(this.pool);
    } catch (err) {
      throw this.trouble(what, err);
    }
  }

  /** One transaction; committed (durably) when it resolves, rolled back when fn throws. */
  async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: queue is closed`);
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw this.trouble(what, err);
    }
    let broken: Error | undefined;
    // The server can end a session between two statements (a fast shutdown's FATAL 57P01): pg then emits
    // 'error' on the client, which the pool listens for only while it is idle. Unheard, it ends the process.
    const onError = (err: Error) => { broken = err; };
    c.on('error', onError);
    try {
      // Not awaited: sent with fn's first statement (the client pipelines), one round trip for both. A failed
      // BEGIN fails that statement too (the connection is gone); it is awaited before COMMIT all the same.
      const begun = c.query('BEGIN');
      begun.catch(() => undefined);
      const result = await fn(c);
      await begun;
      // A COMMIT whose answer is lost may or may not have committed: the caller hears a failure (never a 250),
      // and a client that retries may leave a duplicate, as with any lost reply.
      await c.query('COMMIT');
      return result;
    } catch (err) {
      if (isConnectionLoss(err)) broken = err as Error;
      else await c.query('ROLLBACK').catch(() => undefined);
      throw this.trouble(what, err);
    } finally {
      c.removeListener('error', onError);
      // A connection that died is not given back to the pool.
      c.release(broken);
    }
  }
}

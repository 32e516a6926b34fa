/**
 * queue/sqlite-db — the SQLite queue's database handle, shared by its three
 * parts (sqlite-messages, sqlite-recipients, sqlite-gate): opening with the
 * pragmas, the schema and its migrations, prepared statements cached by
 * their text, and one helper for a write transaction.
 *
 * Every write is its own `BEGIN IMMEDIATE` transaction (a savepoint when the
 * queue thread already runs one for its turn), so two processes on one file
 * never claim the same row, and any failure becomes HAL_ERR_QUEUE_WRITE with
 * the cause kept. Holds no queue logic.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HalcyonError } from '../errors.js';
import { PRAGMAS, SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_VERSION } from './schema-sql.js';

export interface SqliteQueueOptions {
  readonly dataDir: string;
  readonly clock?: () => number;
  /** Upper bound on the database size; writes past it fail (SQLITE_FULL → HAL_ERR_QUEUE_WRITE). */
  readonly maxDbBytes?: number;
}

/** Counters for tests and metrics; only ever increase. */
export interface SqliteStoreStats {
  /** Write transactions committed (all kinds). */
  commits: number;
  /** Of which enqueue batches. */
  enqueueCommits: number;
  enqueued: number;
  /** Outcomes ignored because the recipient was already final, gone, or leased to another owner. */
  ignoredOutcomes: number;
}

export function openDatabase(opts: SqliteQueueOptions): Database.Database {
  const dir = join(opts.dataDir, 'queue');
  mkdirSync(dir, { recursive: true });
  const db = new Database(join(dir, 'queue.db'));
  try {
    for (const p of PRAGMAS) db.pragma(p);
    migrate(db);
    if (opts.maxDbBytes !== undefined) {
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(opts.maxDbBytes / pageSize))}`);
    }
  } catch (err) {
    db.close();
    throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `cannot open queue: ${String(err)}`, { cause: err });
  }
  return db;
}

function migrate(db: Database.Database): void {
  // IMMEDIATE so two processes opening a fresh file do not both create the schema.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `queue schema version ${version} is newer than this Halcyon (${SCHEMA_VERSION})`);
    }
    if (version < 1) db.exec(SCHEMA_V1);
    if (version < 2) db.exec(SCHEMA_V2);
    if (version < 3) db.exec(SCHEMA_V3);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** The handle the three parts share. */
export class SqliteDb {
  readonly stats: SqliteStoreStats = { commits: 0, enqueueCommits: 0, enqueued: 0, ignoredOutcomes: 0 };
  private readonly statements = new Map<string, Database.Statement>();
  closed = false;

  constructor(readonly db: Database.Database, readonly clock: () => number) {}

  /** Prepared statements are cached by their text; the SQL of the parts is all constant. */
  st(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** One IMMEDIATE transaction; any failure becomes HAL_ERR_QUEUE_WRITE with the cause kept. */
  write<T>(what: string, fn: () => T): T {
    if (this.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: queue is closed`);
    let result: T;
    try {
      result = this.db.transaction(fn).immediate();
    } catch (err) {
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: ${String(err)}`, { cause: err });
    }
    this.stats.commits++;
    return result;
  }
}

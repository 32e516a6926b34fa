/**
 * queue/sqlite/db — the SQLite queue's database handle, shared by its three
 * parts (sqlite/messages, sqlite/recipients, sqlite/gate): opening with the
 * pragmas, the schema and its migrations, prepared statements cached by
 * their text, and one helper for a write transaction.
 *
 * Every write is its own `BEGIN IMMEDIATE` transaction (a savepoint when the
 * queue thread already runs one for its turn), so two processes on one file
 * never claim the same row, and any failure becomes HAL_ERR_QUEUE_WRITE with
 * the cause kept. Holds no queue logic.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { detailOf, HalcyonError } from '../../errors.js';
import { PRAGMAS, SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8, SCHEMA_V9, SCHEMA_V11, SCHEMA_V12, SCHEMA_VERSION } from './schema.js';
import { NO_EVENT_ROUTES, type EventRoutes } from '../event.js';

export interface SqliteQueueOptions {
  readonly dataDir: string;
  readonly clock?: () => number;
  /** Upper bound on the database size; writes past it fail (SQLITE_FULL → HAL_ERR_QUEUE_WRITE). */
  readonly maxDbBytes?: number;
  /**
   * 'create' (the server, sendmail): make the file when missing. 'existing' (admin commands on a
   * stopped server): open it read-write, never create it. 'readonly' (listings): create no file at
   * all — not even WAL side files, which as root would be root-owned and lock the server out.
   */
  readonly access?: 'create' | 'existing' | 'readonly';
  /** Where events go (queue/event): none → the outbox gets no rows. */
  readonly events?: EventRoutes;
}

/** There is no queue file in data_dir (a read-only or admin command never creates one). */
export class NoQueueError extends Error {
  readonly code = 'HAL_ERR_NO_QUEUE';
  constructor(readonly dataDir: string) {
    super(`no queue in ${dataDir} (${join(dataDir, 'queue', 'queue.db')} does not exist: is data_dir right, and has the server run here?)`);
    this.name = 'NoQueueError';
  }
}

/** Whether the file's header says WAL (bytes 18–19 = 2): opening it then needs -wal/-shm files. */
function walHeader(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 18) === 2 && b[0] === 2;
  } finally {
    closeSync(fd);
  }
}

/**
 * A read-only connection that creates no file. A cleanly closed queue is in rollback-journal mode
 * (`closeDatabase` switches it back), which SQLite reads without side files; a running or crashed
 * server's -wal/-shm already exist and are used as they are. Only a WAL file without them (a queue
 * last closed by an older Halcyon, or written by `queue salvage`) is read from a copy in memory.
 */
function openReadonly(file: string): Database.Database {
  const sideFiles = existsSync(`${file}-wal`) && existsSync(`${file}-shm`);
  if (walHeader(file) && !sideFiles) {
    // Without a -wal everything is in the file; the copy is marked rollback-mode (bytes 18–19 = 1), as SQLite will not read a WAL image from memory.
    const image = readFileSync(file);
    image[18] = 1;
    image[19] = 1;
    return new Database(image, { readonly: true });
  }
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  return db;
}

/**
 * Closes a read-write handle, back in rollback-journal mode when it was the last connection, so
 * read-only commands on a stopped queue need no -wal/-shm files (see openReadonly). Another
 * connection still open (busy): it stays WAL.
 */
export function closeDatabase(db: Database.Database): void {
  if (!db.readonly) {
    try {
      db.pragma('busy_timeout = 0');
      db.pragma('journal_mode = DELETE');
    } catch { /* another process has the file open: it is still in use, WAL stays */ }
  }
  db.close();
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
  const file = join(dir, 'queue.db');
  const access = opts.access ?? 'create';
  if (access !== 'create' && !existsSync(file)) throw new NoQueueError(opts.dataDir);
  if (access === 'readonly') {
    const ro = openReadonly(file);
    const version = ro.pragma('user_version', { simple: true }) as number;
    if (version !== SCHEMA_VERSION) {
      ro.close();
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `queue schema version ${version}, this Halcyon reads ${SCHEMA_VERSION}`);
    }
    return ro;
  }
  mkdirSync(dir, { recursive: true });
  const db = new Database(file, { fileMustExist: access === 'existing' });
  try {
    for (const p of PRAGMAS) db.pragma(p);
    migrate(db);
    if (opts.maxDbBytes !== undefined) {
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(opts.maxDbBytes / pageSize))}`);
    }
  } catch (err) {
    db.close();
    throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `cannot open queue: ${detailOf(err)}`, { cause: err });
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
    if (version < 4) db.exec(SCHEMA_V4);
    if (version < 5) db.exec(SCHEMA_V5);
    if (version < 6) db.exec(SCHEMA_V6);
    if (version < 7) db.exec(SCHEMA_V7);
    // A queue made by the Halcyon that added version 8 says 7 whether or not it has the column (it wrote 7 after V8).
    if (version < 8 && !hasColumn(db, 'messages', 'header_message_id')) db.exec(SCHEMA_V8);
    if (version < 9) db.exec(SCHEMA_V9);
    if (version < 11) db.exec(SCHEMA_V11);
    if (version < 12) db.exec(SCHEMA_V12);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Whether `table` has `column` (generated and hidden columns included). */
function hasColumn(db: Database.Database, table: string, column: string): boolean {
  return (db.pragma(`table_xinfo(${table})`) as { name: string }[]).some((c) => c.name === column);
}

/** The handle the three parts share. */
export class SqliteDb {
  readonly stats: SqliteStoreStats = { commits: 0, enqueueCommits: 0, enqueued: 0, ignoredOutcomes: 0 };
  private readonly statements = new Map<string, Database.Statement>();
  closed = false;

  /** `events`: the sinks each state change writes an outbox row for (queue/event). */
  constructor(readonly db: Database.Database, readonly clock: () => number, readonly events: EventRoutes = NO_EVENT_ROUTES) {}

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
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `${what}: ${detailOf(err)}`, { cause: err });
    }
    this.stats.commits++;
    return result;
  }
}

/**
 * bench/node-sqlite/shim — the part of better-sqlite3's API that Halcyon's
 * SQLite queue uses (src/queue/sqlite: Database with pragma, prepare, exec,
 * transaction().immediate(), close, readonly; Statement with run, get, all,
 * iterate, pluck), made on Node's built-in `node:sqlite` (DatabaseSync).
 * bench/node-sqlite/hook puts it in place of `better-sqlite3`, so the
 * benches run the queue's real code on either driver for
 * docs/decisions/0016-sqlite-driver.md. A measuring device, not a driver
 * Halcyon ships: no in-memory images, no user functions, no backups.
 *
 * Differences it papers over: node:sqlite returns BLOBs as Uint8Array (made
 * Buffers here, as the queue expects), takes named parameters as the first
 * argument only, and has no pluck (setReturnArrays gives the first column).
 */
import { existsSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { DatabaseSync, type StatementSync, type SQLInputValue } from 'node:sqlite';

type Row = Record<string, unknown>;
const isNamed = (v: unknown): v is Record<string, SQLInputValue> =>
  typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Array.isArray(v);

/** BLOB values as Buffers (a view, no copy), as better-sqlite3 gives them. */
function buffers(row: unknown): unknown {
  if (row === undefined || row === null || typeof row !== 'object') return row;
  if (Array.isArray(row)) return row.map((v) => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v));
  const r = row as Row;
  for (const k in r) {
    const v = r[k];
    if (v instanceof Uint8Array) r[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  return r;
}

class Statement {
  private plucked = false;
  constructor(private readonly s: StatementSync) {}

  pluck(on = true): this {
    this.plucked = on;
    this.s.setReturnArrays(on);
    return this;
  }

  private args(params: unknown[]): [Record<string, SQLInputValue>, ...SQLInputValue[]] | SQLInputValue[] {
    return params.length === 1 && isNamed(params[0]) ? [params[0]] : (params as SQLInputValue[]);
  }

  private out(row: unknown): unknown {
    const r = buffers(row);
    return this.plucked && Array.isArray(r) ? r[0] : r;
  }

  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint } {
    return (this.s.run as (...a: unknown[]) => { changes: number | bigint; lastInsertRowid: number | bigint })(...this.args(params));
  }

  get(...params: unknown[]): unknown {
    return this.out((this.s.get as (...a: unknown[]) => unknown)(...this.args(params)));
  }

  all(...params: unknown[]): unknown[] {
    return ((this.s.all as (...a: unknown[]) => unknown[])(...this.args(params))).map((r) => this.out(r));
  }

  *iterate(...params: unknown[]): IterableIterator<unknown> {
    for (const r of (this.s.iterate as (...a: unknown[]) => Iterable<unknown>)(...this.args(params))) yield this.out(r);
  }
}

type Tx<F extends (...a: never[]) => unknown> = F & { deferred: F; immediate: F; exclusive: F };

export default class Database {
  private readonly db: DatabaseSync;
  readonly readonly: boolean;
  private depth = 0;

  constructor(file: string | Buffer, opts: { readonly?: boolean; fileMustExist?: boolean } = {}) {
    if (typeof file !== 'string') throw new Error('node-sqlite shim: opening an in-memory image is not supported');
    if (opts.fileMustExist && !existsSync(file)) throw Object.assign(new Error(`unable to open database file: ${file}`), { code: 'SQLITE_CANTOPEN' });
    this.readonly = opts.readonly === true;
    this.db = new DatabaseSync(file, { readOnly: this.readonly });
    // For a run to show which driver it is on: HALCYON_SQLITE_TRACE=1.
    if (process.env.HALCYON_SQLITE_TRACE) process.stderr.write(`node:sqlite shim: ${file} (thread ${threadId})\n`);
  }

  get inTransaction(): boolean {
    return this.db.isTransaction;
  }

  pragma(text: string, opts: { simple?: boolean } = {}): unknown {
    const rows = this.db.prepare(`PRAGMA ${text}`).all();
    if (!opts.simple) return rows;
    const first = rows[0] as Row | undefined;
    return first === undefined ? undefined : Object.values(first)[0];
  }

  exec(sql: string): this {
    this.db.exec(sql);
    return this;
  }

  prepare(sql: string): Statement {
    return new Statement(this.db.prepare(sql));
  }

  /** better-sqlite3's transaction(): BEGIN [mode] … COMMIT, or a savepoint when one is already open; ROLLBACK on a throw. */
  transaction<F extends (...a: never[]) => unknown>(fn: F): Tx<F> {
    const wrap = (mode: string): F => ((...args: Parameters<F>) => {
      const nested = this.depth > 0;
      this.db.exec(nested ? `SAVEPOINT s${this.depth}` : `BEGIN ${mode}`);
      this.depth++;
      try {
        const result = fn(...args);
        this.depth--;
        this.db.exec(nested ? `RELEASE s${this.depth}` : 'COMMIT');
        return result;
      } catch (err) {
        this.depth--;
        if (nested) this.db.exec(`ROLLBACK TO s${this.depth}; RELEASE s${this.depth}`);
        else if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    }) as F;
    return Object.assign(wrap('DEFERRED'), { deferred: wrap('DEFERRED'), immediate: wrap('IMMEDIATE'), exclusive: wrap('EXCLUSIVE') }) as Tx<F>;
  }

  close(): void {
    this.db.close();
  }
}

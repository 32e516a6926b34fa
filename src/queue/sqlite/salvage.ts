/**
 * queue/sqlite/salvage — `halcyon queue salvage`: copies every message that can
 * still be read out of a damaged SQLite queue into a fresh one, and reports
 * what could not be read. Run with the server stopped.
 *
 * Steps: the damaged files (queue.db and its -wal) are moved aside, untouched,
 * as `queue.db.damaged-<time>`; a scratch copy of them is read (SQLite may
 * write to a file it opens, the kept evidence must not change); a fresh
 * queue.db with the current schema is written in their place.
 *
 * Reading a damaged b-tree stops at the first bad page, so message ids are
 * gathered from several scans (messages, bodies, recipients; each in both
 * directions, which reaches both sides of a damaged region); then each
 * message is copied whole — its row, its body and its recipients, in one
 * transaction — or reported lost with what is known of it. Attempt history
 * and destination health are copied when readable (losing them loses no mail).
 *
 * Works on rows as SQLite gives them (column names of sqlite/schema.ts), not
 * through the Store: the Store refuses a damaged file by design.
 */
import Database from 'better-sqlite3';
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GENERATED_COLUMNS, PRAGMAS, SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8, SCHEMA_V9, SCHEMA_V11, SCHEMA_V12, SCHEMA_VERSION } from './schema.js';
import { BodySpool } from '../spool.js';
import { markQueueCreated, queueFiles } from './check.js';

export interface LostMessage {
  readonly id: string;
  readonly why: string;
  readonly sender?: string;
  readonly recipients?: readonly string[];
}

export interface SalvageReport {
  /** Where the damaged files were moved (queue.db.damaged-…), or undefined when there was no file. */
  readonly keptAs?: string;
  readonly messages: number;
  readonly recipients: number;
  readonly attempts: number;
  readonly destinations: number;
  readonly lost: readonly LostMessage[];
  /** Scans that stopped at damage (how much of the file could not be walked). */
  readonly damagedScans: readonly string[];
}

type Row = Record<string, unknown>;

const stamp = (now: number): string => new Date(now).toISOString().replace(/[-:]/g, '').replace(/\..*$/, 'Z');

/** Runs `sql` and yields rows until the end or the first error (recorded in `damaged`). */
function scan(db: Database.Database, sql: string, damaged: string[], params: unknown[] = []): Row[] {
  const out: Row[] = [];
  try {
    for (const r of db.prepare(sql).iterate(...params)) out.push(r as Row);
  } catch (err) {
    damaged.push(`${sql}: ${(err as Error).message}`);
  }
  return out;
}

function insert(db: Database.Database, table: string, row: Row): void {
  // A generated column (the Message-ID, from event_facts) is computed again from what is copied.
  const cols = Object.keys(row).filter((c) => !(GENERATED_COLUMNS[table] ?? []).includes(c));
  db.prepare(`INSERT OR IGNORE INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(Object.fromEntries(cols.map((c) => [c, row[c]])));
}

export function salvageQueue(dataDir: string, now = Date.now()): SalvageReport {
  const f = queueFiles(dataDir);
  const keptAs = `${f.db}.damaged-${stamp(now)}`;
  const scratch = `${f.dir}/salvage-scratch.db`;
  const had = existsSync(f.db);
  if (had) {
    renameSync(f.db, keptAs);
    if (existsSync(f.wal)) renameSync(f.wal, `${keptAs}-wal`);
    rmSync(`${f.db}-shm`, { force: true });
    copyFileSync(keptAs, scratch);
    if (existsSync(`${keptAs}-wal`)) copyFileSync(`${keptAs}-wal`, `${scratch}-wal`);
  }

  const fresh = new Database(f.db);
  for (const p of PRAGMAS) fresh.pragma(p);
  fresh.exec(SCHEMA_V1);
  fresh.exec(SCHEMA_V2);
  fresh.exec(SCHEMA_V3);
  fresh.exec(SCHEMA_V4);
  fresh.exec(SCHEMA_V5);
  fresh.exec(SCHEMA_V6);
  fresh.exec(SCHEMA_V7);
  fresh.exec(SCHEMA_V8);
  fresh.exec(SCHEMA_V9);
  fresh.exec(SCHEMA_V11);
  fresh.exec(SCHEMA_V12);
  fresh.pragma(`user_version = ${SCHEMA_VERSION}`);
  fresh.pragma('foreign_keys = OFF'); // rows are copied in dependency order; a lost parent must not abort a batch

  const damaged: string[] = [];
  const lost: LostMessage[] = [];
  let messages = 0;
  let recipients = 0;
  let attempts = 0;
  let destinations = 0;
  let src: Database.Database | undefined;
  try {
    if (had) {
      try {
        src = new Database(scratch, { fileMustExist: true });
      } catch (err) {
        damaged.push(`open: ${(err as Error).message}`);
      }
    }
    if (src) {
      const spool = new BodySpool(join(dataDir, 'queue'));
      const ids = new Set<string>();
      for (const sql of [
        'SELECT id FROM messages ORDER BY id', 'SELECT id FROM messages ORDER BY id DESC',
        'SELECT message_id AS id FROM bodies ORDER BY message_id', 'SELECT message_id AS id FROM bodies ORDER BY message_id DESC',
        'SELECT message_id AS id FROM recipients NOT INDEXED ORDER BY id', 'SELECT message_id AS id FROM recipients NOT INDEXED ORDER BY id DESC',
      ]) for (const r of scan(src, sql, damaged)) ids.add(String(r.id));

      const copyOne = fresh.transaction((m: Row, body: Row, rcpts: Row[], hist: Row[]) => {
        insert(fresh, 'messages', m);
        insert(fresh, 'bodies', body);
        for (const r of rcpts) insert(fresh, 'recipients', r);
        for (const a of hist) insert(fresh, 'attempts', a);
      });
      for (const id of [...ids].sort()) {
        const errs: string[] = [];
        const m = scan(src, 'SELECT * FROM messages WHERE id = ?', errs, [id])[0];
        const body = scan(src, 'SELECT * FROM bodies WHERE message_id = ?', errs, [id])[0];
        let rcpts = scan(src, 'SELECT * FROM recipients WHERE message_id = ?', errs, [id]);
        if (errs.length > 0 || rcpts.length === 0) {
          const again: string[] = [];
          const r2 = scan(src, 'SELECT * FROM recipients NOT INDEXED WHERE message_id = ?', again, [id]);
          if (r2.length > rcpts.length) rcpts = r2;
        }
        const known = { sender: m?.sender === undefined ? undefined : String(m.sender), recipients: rcpts.map((r) => String(r.address)) };
        const spoolErr = body ? unreadableSpooledBody(spool, body) : undefined;
        if (spoolErr) errs.push(spoolErr);
        if (!m || !body || spoolErr || rcpts.length === 0) {
          const why = !m ? 'message row unreadable' : !body || spoolErr ? 'body unreadable' : 'recipients unreadable';
          lost.push({ id, why: errs.length ? `${why} (${errs[0]!.replace(/^.*?: /, '')})` : why, ...known });
          continue;
        }
        const hist: Row[] = [];
        for (const r of rcpts) hist.push(...scan(src, 'SELECT * FROM attempts WHERE recipient_id = ?', [], [r.id]));
        try {
          copyOne(m, body, rcpts, hist);
          messages++;
          recipients += rcpts.length;
          attempts += hist.length;
        } catch (err) {
          lost.push({ id, why: `could not be written: ${(err as Error).message}`, ...known });
        }
      }
      for (const d of scan(src, 'SELECT * FROM destinations', damaged)) {
        insert(fresh, 'destinations', d);
        destinations++;
      }
      // Events not yet acknowledged by their sinks: kept, leases dropped (whoever sent them is gone).
      const hasOutbox = scan(src, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_outbox'`, damaged).length > 0;
      if (hasOutbox) for (const e of scan(src, 'SELECT * FROM event_outbox', damaged)) insert(fresh, 'event_outbox', { ...e, lease_owner: null, lease_until: null });
      // The verification cache: what probes learned (losing it only costs probes again, but it is cheap to keep).
      const hasVerifications = scan(src, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'verifications'`, damaged).length > 0;
      if (hasVerifications) for (const v of scan(src, 'SELECT * FROM verifications', damaged)) insert(fresh, 'verifications', v);
      // TLS-RPT counts not yet reported, and their claims (leases dropped).
      const hasTlsRpt = scan(src, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tls_sessions'`, damaged).length > 0;
      if (hasTlsRpt) {
        for (const r of scan(src, 'SELECT * FROM tls_sessions', damaged)) insert(fresh, 'tls_sessions', r);
        for (const c of scan(src, 'SELECT * FROM tls_report_claims', damaged)) insert(fresh, 'tls_report_claims', { ...c, lease_owner: null, lease_until: null });
      }
      // The suppression list: every entry that can be read (an expired one is purged by the server later).
      const hasSuppressions = scan(src, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'suppressions'`, damaged).length > 0;
      if (hasSuppressions) for (const e of scan(src, 'SELECT * FROM suppressions', damaged)) insert(fresh, 'suppressions', e);
      // Injection idempotency keys: a retried request must still find its first answer (the server expires them after 24 h).
      const hasKeys = scan(src, `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'idempotency_keys'`, damaged).length > 0;
      if (hasKeys) for (const k of scan(src, 'SELECT * FROM idempotency_keys', damaged)) insert(fresh, 'idempotency_keys', k);
    }
  } finally {
    src?.close();
    fresh.close();
    rmSync(scratch, { force: true });
    rmSync(`${scratch}-wal`, { force: true });
    rmSync(`${scratch}-shm`, { force: true });
  }
  markQueueCreated(dataDir);
  return { ...(had ? { keptAs } : {}), messages, recipients, attempts, destinations, lost, damagedScans: damaged };
}

/** Why a body kept in a spool segment cannot be read back (undefined when it can, or is not spooled). */
function unreadableSpooledBody(spool: BodySpool, body: Row): string | undefined {
  if (body.segment === null || body.segment === undefined) return undefined;
  try {
    spool.read({ segment: String(body.segment), offset: Number(body.seg_offset), length: Number(body.seg_length) });
    return undefined;
  } catch (err) {
    return `spool: ${(err as Error).message}`;
  }
}

/**
 * queue/sqlite/check — is the SQLite queue file fit to open? Run before the server
 * opens its queue (app.ts) and by `halcyon queue check`.
 *
 * Two things make a queue unfit:
 * - damage: `PRAGMA quick_check` is not "ok", or SQLite will not open the
 *   file at all (not a database, malformed). Starting anyway once greeted
 *   clients and then hung on end of data; now the server refuses to start and
 *   names the file and the commands to run.
 * - a file that lost its data: queue.db missing or zero-length while the
 *   data_dir shows it held a queue (the `queue.db.created` marker written the
 *   first time a queue was found healthy, or a non-empty `queue.db-wal`).
 *   Opening it would silently create an empty queue over the lost messages.
 *
 * - a body the file points at is gone: a spool segment (queue/spool) that
 *   rows refer to is missing or shorter than they say.
 *
 * A fresh data_dir (no file, no marker, no WAL) is fit: the store creates it.
 * Does not repair anything (queue/sqlite/salvage does) and does not open the Store.
 */
import Database from 'better-sqlite3';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface QueueFiles {
  readonly dir: string;
  readonly db: string;
  readonly wal: string;
  readonly marker: string;
}

export function queueFiles(dataDir: string): QueueFiles {
  const dir = join(dataDir, 'queue');
  const db = join(dir, 'queue.db');
  return { dir, db, wal: `${db}-wal`, marker: `${db}.created` };
}

export interface QueueCheck {
  readonly file: string;
  /** 'fresh': nothing there yet; 'ok': quick_check passed; 'damaged' / 'lost': unfit, see problems. */
  readonly status: 'fresh' | 'ok' | 'damaged' | 'lost';
  readonly problems: readonly string[];
}

const sizeOf = (f: string): number | undefined => (existsSync(f) ? statSync(f).size : undefined);

/** At most this many quick_check lines are kept (a badly damaged file reports thousands). */
const MAX_PROBLEMS = 20;

/** `integrity: false` only looks for a file that lost its data (cheap; for CLI commands on every call). */
export function checkQueue(dataDir: string, opts: { integrity?: boolean } = {}): QueueCheck {
  const f = queueFiles(dataDir);
  const dbSize = sizeOf(f.db);
  if (dbSize === undefined || dbSize === 0) {
    const problems: string[] = [];
    const what = dbSize === undefined ? 'is missing' : 'is empty (0 bytes)';
    if (existsSync(f.marker)) problems.push(`${f.db} ${what}, but this data_dir held a queue (${f.marker} exists)`);
    const walSize = sizeOf(f.wal) ?? 0;
    if (walSize > 0) problems.push(`${f.db} ${what}, but ${f.wal} holds ${walSize} bytes of unapplied writes`);
    return { file: f.db, status: problems.length ? 'lost' : 'fresh', problems };
  }
  if (opts.integrity === false) return { file: f.db, status: 'ok', problems: [] };
  let db: Database.Database | undefined;
  try {
    db = new Database(f.db, { fileMustExist: true });
    const rows = db.pragma(`quick_check(${MAX_PROBLEMS})`) as { quick_check: string }[];
    const lines = rows.map((r) => r.quick_check).filter((l) => l !== 'ok');
    if (lines.length === 0) lines.push(...missingSegments(db, f.dir));
    return { file: f.db, status: lines.length ? 'damaged' : 'ok', problems: lines };
  } catch (err) {
    return { file: f.db, status: 'damaged', problems: [`SQLite cannot read it: ${(err as Error).message}`] };
  } finally {
    db?.close();
  }
}

/** Thrown when the queue is unfit to start on; the message says what to run. */
export class QueueUnfitError extends Error {
  readonly code = 'HAL_ERR_QUEUE_CORRUPT';
  constructor(readonly check: QueueCheck, configHint = '') {
    const cmd = (sub: string) => `halcyon queue ${sub}${configHint}`;
    super([
      `queue ${check.file} is ${check.status === 'lost' ? 'missing its data' : 'damaged'}; refusing to start:`,
      ...check.problems.map((p) => `  ${p}`),
      `Run \`${cmd('check')}\` to see the damage, then \`${cmd('salvage')}\` with the server stopped: it copies every`,
      'message that can still be read into a fresh queue, keeps the old file beside it, and lists what could not be read.',
      ...(check.status === 'lost' ? ['If the file was restored or removed on purpose, restore it from a backup, or delete the marker and the -wal file to start empty.'] : []),
    ].join('\n'));
    this.name = 'QueueUnfitError';
  }
}

/** Throws QueueUnfitError unless the queue is fresh or healthy; marks a healthy queue as having existed. */
export function assertQueueFit(dataDir: string, opts: { integrity?: boolean; configHint?: string } = {}): void {
  const c = checkQueue(dataDir, opts);
  if (c.status === 'damaged' || c.status === 'lost') throw new QueueUnfitError(c, opts.configHint);
  if (c.status === 'ok') markQueueCreated(dataDir);
}

/** The marker that says "this data_dir held a queue" (never removed by Halcyon). */
export function markQueueCreated(dataDir: string): void {
  const f = queueFiles(dataDir);
  if (!existsSync(f.marker)) {
    try {
      writeFileSync(f.marker, `queue created; if ${f.db} is ever missing or empty, messages were lost: see docs/operations.md\n`);
    } catch { /* a full disk must not stop the start; the next start writes it */ }
  }
}

/** Spool segments the bodies table refers to that are missing or too short (schema 3 and later). */
function missingSegments(db: Database.Database, queueDir: string): string[] {
  const hasSpool = (db.prepare("SELECT 1 FROM pragma_table_info('bodies') WHERE name = 'segment'").get()) !== undefined;
  if (!hasSpool) return [];
  const segs = db.prepare(`SELECT segment, count(*) AS n, max(seg_offset + seg_length) AS needs
                             FROM bodies WHERE segment IS NOT NULL GROUP BY segment`).all() as { segment: string; n: number; needs: number }[];
  const out: string[] = [];
  for (const s of segs) {
    const size = sizeOf(join(queueDir, 'spool', s.segment));
    if (size === undefined) out.push(`spool segment ${s.segment} holding ${s.n} message bod${s.n === 1 ? 'y' : 'ies'} is missing`);
    else if (size < s.needs) out.push(`spool segment ${s.segment} is ${size} bytes; its ${s.n} bod${s.n === 1 ? 'y needs' : 'ies need'} ${s.needs}`);
    if (out.length >= MAX_PROBLEMS) break;
  }
  return out;
}

/**
 * queue/sqlite-store — the default durable queue: one SQLite file
 * (`<dataDir>/queue/queue.db`, WAL, synchronous=FULL) holding messages, their
 * bodies, recipients, attempt history and destination health.
 *
 * Enqueues are group-committed: every `enqueue()` made in the same event-loop
 * turn is written by one transaction (one fsync) on the next `setImmediate`,
 * and all their promises settle together — resolved once it has committed, or
 * all rejected with HAL_ERR_QUEUE_WRITE with nothing of the batch stored.
 * Every other write is its own `BEGIN IMMEDIATE` transaction, so two stores on
 * one file (two processes) never claim the same recipient (I2), and an outcome
 * for a recipient already final is ignored (I1).
 *
 * better-sqlite3 is synchronous; the methods are async only to honour the
 * Store contract. A busy database blocks the event loop up to busy_timeout.
 * Does not decide retry times, backoff or DSNs: callers pass those in.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HalcyonError } from '../errors.js';
import { createIdGenerator } from './ids.js';
import type {
  AttemptRow, DestinationRow, MessageId, MessageRow, NewMessage, Outcome,
  RecipientOutcome, RecipientRow, RecipientState,
} from './model.js';
import { FINAL_STATES } from './model.js';
import { PRAGMAS, SCHEMA_V1, SCHEMA_VERSION } from './schema-sql.js';
import {
  MESSAGE_COLUMNS, RECIPIENT_COLUMNS, domainOf, toAttempt, toDestination, toMessage, toRecipient,
  type RawAttempt, type RawDestination, type RawMessage, type RawRecipient,
} from './sqlite-rows.js';
import type { ClaimRequest, QueueCounts, QueueFilter, Store } from './store.js';

export interface SqliteStoreOptions {
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
 * A read-only connection that creates no file. A cleanly stopped store is in rollback-journal mode
 * (close() switches it back), which SQLite reads without side files; a running or crashed server's
 * -wal/-shm already exist and are used as they are. Only a WAL file without them (an older Halcyon's
 * queue) is read from a copy in memory.
 */
function openReadonly(file: string): Database.Database {
  const sideFiles = existsSync(`${file}-wal`) && existsSync(`${file}-shm`);
  if (walHeader(file) && !sideFiles) return new Database(readFileSync(file), { readonly: true });
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  return db;
}

/** Counters for tests and metrics; only ever increase. */
export interface SqliteStoreStats {
  /** Write transactions committed (all kinds). */
  commits: number;
  /** Of which enqueue batches. */
  enqueueCommits: number;
  enqueued: number;
  /** Outcomes ignored because the recipient was already final or gone. */
  ignoredOutcomes: number;
}

/** A batch is cut at whichever comes first; the next one commits right after it. */
export const BATCH_MAX_MESSAGES = 256;
export const BATCH_MAX_BYTES = 64 * 1024 * 1024;

/** The final states of queue/model, as an SQL list. */
const FINAL_SQL = `(${FINAL_STATES.map((st) => `'${st}'`).join(',')})`;
const DUE_STATES_SQL = `('queued','deferred')`;
/** A recipient whose destination row is absent is claimable; 'suspended' never is. */
const DEST_OPEN_SQL =
  `(d.key IS NULL OR (d.health <> 'suspended' AND NOT (d.health = 'backoff' AND d.backoff_until > @now)))`;

interface Pending {
  readonly id: MessageId;
  readonly msg: NewMessage;
  readonly resolve: (id: MessageId) => void;
  readonly reject: (err: unknown) => void;
}
interface Batch { readonly items: Pending[]; bytes: number }

export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
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
    return new SqliteStore(ro, opts.clock ?? Date.now, true);
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
    throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', `cannot open queue: ${String(err)}`, { cause: err });
  }
  return new SqliteStore(db, opts.clock ?? Date.now);
}

function migrate(db: Database.Database): void {
  // IMMEDIATE so two processes opening a fresh file do not both create the schema.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `queue schema version ${version} is newer than this Halcyon (${SCHEMA_VERSION})`);
    }
    db.exec(SCHEMA_V1);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Attempts an outcome adds to a recipient's count: expiry and uncounted deferrals are not tries. */
function attemptIncrement(o: Outcome): number {
  switch (o.kind) {
    case 'delivered': return 1;
    case 'failed': return 1;
    case 'expired': return 0;
    case 'deferred': return o.countAttempt ? 1 : 0;
  }
}

export class SqliteStore implements Store {
  readonly stats: SqliteStoreStats = { commits: 0, enqueueCommits: 0, enqueued: 0, ignoredOutcomes: 0 };
  private readonly statements = new Map<string, Database.Statement>();
  private readonly nextId: () => MessageId;
  private batches: Batch[] = [];
  private flushTimer: NodeJS.Immediate | undefined;
  private closed = false;
  /** Messages whose recipients changed since the last removeCompleted (candidates for removal). */
  private readonly touched = new Set<MessageId>();
  private scannedAll = false;
  private readonly insertBatch: Database.Transaction<(items: readonly Pending[]) => void>;

  constructor(private readonly db: Database.Database, private readonly clock: () => number, private readonly readonly = false) {
    this.nextId = createIdGenerator(clock);
    this.insertBatch = db.transaction((items: readonly Pending[]) => {
      const now = this.clock();
      for (const { id, msg } of items) {
        this.st(`INSERT INTO messages (id, sender, params, received_at, size, trace, held, dsn_for)
                 VALUES (?, ?, ?, ?, ?, ?, 0, ?)`)
          .run(id, msg.sender, JSON.stringify(msg.params), msg.receivedAt, msg.body.length,
            JSON.stringify(msg.trace), msg.dsnFor ?? null);
        this.st('INSERT INTO bodies (message_id, data) VALUES (?, ?)').run(id, msg.body);
        for (const r of msg.recipients) {
          this.st(`INSERT INTO recipients (message_id, address, domain, orcpt, notify, destination, state,
                     attempts, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?)`)
            .run(id, r.address, domainOf(r.address), r.orcpt ?? null,
              r.notify !== undefined ? JSON.stringify(r.notify) : null, r.destination, now, now);
        }
      }
    });
  }

  // ---- enqueue (group commit) ----

  newId(): MessageId {
    return this.nextId();
  }

  enqueue(msg: NewMessage): Promise<MessageId> {
    if (this.closed) return Promise.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue is closed'));
    if (msg.recipients.length === 0) return Promise.reject(new RangeError('a message needs at least one recipient'));
    return new Promise<MessageId>((resolve, reject) => {
      let batch = this.batches.at(-1);
      const full = batch !== undefined && (batch.items.length >= BATCH_MAX_MESSAGES ||
        (batch.items.length > 0 && batch.bytes + msg.body.length > BATCH_MAX_BYTES));
      if (batch === undefined || full) {
        batch = { items: [], bytes: 0 };
        this.batches.push(batch);
      }
      batch.items.push({ id: msg.id ?? this.nextId(), msg, resolve, reject });
      batch.bytes += msg.body.length;
      this.flushTimer ??= setImmediate(() => this.flushBatches());
    });
  }

  private flushBatches(): void {
    if (this.flushTimer !== undefined) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    const batches = this.batches;
    this.batches = [];
    for (const batch of batches) {
      let items: Pending[] = batch.items;
      try {
        items = this.dropDuplicateIds(batch.items);
        if (items.length === 0) continue;
        this.insertBatch.immediate(items);
      } catch (err) {
        const e = new HalcyonError('HAL_ERR_QUEUE_WRITE', `enqueue of ${items.length} message(s): ${String(err)}`, { cause: err });
        for (const p of items) p.reject(e);
        continue;
      }
      this.stats.commits++;
      this.stats.enqueueCommits++;
      this.stats.enqueued += items.length;
      for (const p of items) p.resolve(p.id);
    }
  }

  /**
   * A caller-assigned id already stored (or repeated in the batch) would fail
   * the primary key and with it every other message of the batch: reject just
   * that one up front.
   */
  private dropDuplicateIds(items: readonly Pending[]): Pending[] {
    const seen = new Set<MessageId>();
    const exists = this.st('SELECT 1 FROM messages WHERE id = ?').pluck();
    return items.filter((p) => {
      const dup = seen.has(p.id) || (p.msg.id !== undefined && exists.get(p.id) !== undefined);
      seen.add(p.id);
      if (dup) p.reject(new HalcyonError('HAL_ERR_QUEUE_WRITE', `message id ${p.id} already in the queue`));
      return !dup;
    });
  }

  // ---- reads ----

  async getMessage(id: MessageId): Promise<MessageRow | undefined> {
    const raw = this.st(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?`).get(id) as RawMessage | undefined;
    return raw && toMessage(raw);
  }

  async getBody(id: MessageId): Promise<Buffer> {
    const row = this.st('SELECT data FROM bodies WHERE message_id = ?').get(id) as { data: Buffer } | undefined;
    if (!row) throw new HalcyonError('HAL_ERR_QUEUE_NOT_FOUND', id);
    return row.data;
  }

  async getRecipients(id: MessageId): Promise<RecipientRow[]> {
    const raws = this.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.message_id = ? ORDER BY r.id`).all(id) as RawRecipient[];
    return raws.map(toRecipient);
  }

  async getAttempts(id: MessageId): Promise<AttemptRow[]> {
    const raws = this.st(`SELECT a.recipient_id, a.at, a.state, a.reply FROM attempts a
      JOIN recipients r ON r.id = a.recipient_id WHERE r.message_id = ? ORDER BY a.at, a.rowid`).all(id) as RawAttempt[];
    return raws.map(toAttempt);
  }

  async listMessages(filter: QueueFilter): Promise<{ message: MessageRow; recipients: RecipientRow[] }[]> {
    const params = {
      mid: filter.messageId ?? null,
      older: filter.olderThan ?? null,
      domain: filter.domain !== undefined ? filter.domain.toLowerCase() : null,
      state: filter.state ?? null,
      limit: filter.limit ?? -1, // -1: no limit in SQLite
    };
    const messages = (this.st(`SELECT ${MESSAGE_COLUMNS} FROM messages m
      WHERE (@mid IS NULL OR m.id = @mid) AND (@older IS NULL OR m.received_at < @older)
        AND ((@domain IS NULL AND @state IS NULL) OR EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id
          AND (@domain IS NULL OR r.domain = @domain) AND (@state IS NULL OR r.state = @state)))
      ORDER BY m.id LIMIT @limit`).all(params) as RawMessage[]).map(toMessage);
    const byMessage = new Map<MessageId, RecipientRow[]>(messages.map((m) => [m.id, []]));
    const raws = this.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r
      WHERE r.message_id IN (SELECT value FROM json_each(?)) ORDER BY r.id`).all(JSON.stringify([...byMessage.keys()])) as RawRecipient[];
    for (const raw of raws) byMessage.get(raw.message_id)?.push(toRecipient(raw));
    return messages.map((message) => ({ message, recipients: byMessage.get(message.id) ?? [] }));
  }

  async counts(): Promise<QueueCounts> {
    const { n } = this.st('SELECT COUNT(*) AS n FROM messages').get() as { n: number };
    const byState: Record<RecipientState, number> = { queued: 0, inflight: 0, delivered: 0, deferred: 0, failed: 0, expired: 0 };
    for (const row of this.st('SELECT state, COUNT(*) AS n FROM recipients GROUP BY state').all() as { state: RecipientState; n: number }[]) {
      byState[row.state] = row.n;
    }
    return { messages: n, byState };
  }

  async nextDueAt(): Promise<number | undefined> {
    // Two cheap answers instead of one scan: the first pending row (in index order) that nothing blocks,
    // and the end of the earliest backoff that has rows waiting. A parked destination's rows already carry
    // its backoff end (parkDestination), so the first query rarely walks past them.
    const row = this.st(`SELECT MIN(due) AS due FROM (
        SELECT (SELECT r.next_attempt_at FROM recipients r JOIN messages m ON m.id = r.message_id
            LEFT JOIN destinations d ON d.key = r.destination
          WHERE r.state IN ${DUE_STATES_SQL} AND m.held = 0
            AND (d.key IS NULL OR d.health = 'ok' OR (d.health = 'backoff' AND d.backoff_until <= r.next_attempt_at))
          ORDER BY r.next_attempt_at LIMIT 1) AS due
        UNION ALL
        SELECT MIN(d.backoff_until) FROM destinations d WHERE d.health = 'backoff'
          AND EXISTS (SELECT 1 FROM recipients r WHERE r.destination = d.key AND r.state IN ${DUE_STATES_SQL}
            AND r.next_attempt_at < d.backoff_until))`).get() as { due: number | null };
    return row.due ?? undefined;
  }

  async parkDestination(key: string, until: number, limit = -1): Promise<number> {
    return this.write('parkDestination', () => this.st(`UPDATE recipients SET next_attempt_at = @until
      WHERE id IN (SELECT id FROM recipients WHERE destination = @key AND state IN ${DUE_STATES_SQL}
        AND next_attempt_at < @until LIMIT @limit)`).run({ key, until, limit }).changes);
  }

  async listExpirable(receivedBefore: number, limit: number): Promise<RecipientRow[]> {
    // CROSS JOIN keeps messages (by the received_at index) as the outer loop: old messages are few.
    const raws = this.st(`SELECT ${RECIPIENT_COLUMNS} FROM messages m CROSS JOIN recipients r ON r.message_id = m.id
      WHERE m.received_at < ? AND r.state IN ${DUE_STATES_SQL} LIMIT ?`).all(receivedBefore, limit) as RawRecipient[];
    return raws.map(toRecipient);
  }

  async listDelayed(receivedBefore: number, limit: number): Promise<RecipientRow[]> {
    const raws = this.st(`SELECT ${RECIPIENT_COLUMNS} FROM messages m CROSS JOIN recipients r ON r.message_id = m.id
      WHERE m.received_at < ? AND r.state = 'deferred' AND r.delay_notified = 0 LIMIT ?`)
      .all(receivedBefore, limit) as RawRecipient[];
    return raws.map(toRecipient);
  }

  async listReportsDue(limit: number): Promise<RecipientRow[]> {
    const raws = this.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r
      -- The same condition as the partial index recipients_reports, word for word, so SQLite uses it.
      WHERE dsn_done = 0 AND (state IN ('failed', 'expired') OR (state = 'delivered' AND notify LIKE '%SUCCESS%'))
      ORDER BY r.message_id, r.id LIMIT ?`).all(limit) as RawRecipient[];
    return raws.map(toRecipient);
  }

  async getDestination(key: string): Promise<DestinationRow | undefined> {
    const raw = this.st('SELECT * FROM destinations WHERE key = ?').get(key) as RawDestination | undefined;
    return raw && toDestination(raw);
  }

  async listDestinations(): Promise<(DestinationRow & { queued: number })[]> {
    const rows = this.st(`WITH q AS (SELECT destination AS key, COUNT(*) AS queued FROM recipients
        WHERE state NOT IN ${FINAL_SQL} GROUP BY destination)
      SELECT d.*, COALESCE(q.queued, 0) AS queued FROM destinations d LEFT JOIN q ON q.key = d.key
      UNION ALL
      SELECT q.key, 'ok', 0, 0, 0, NULL, @now, q.queued FROM q WHERE q.key NOT IN (SELECT key FROM destinations)
      ORDER BY 1`).all({ now: this.clock() }) as (RawDestination & { queued: number })[];
    return rows.map((raw) => ({ ...toDestination(raw), queued: raw.queued }));
  }

  // ---- writes ----

  async claimDue(req: ClaimRequest): Promise<RecipientRow[]> {
    return this.write('claimDue', () => {
      const raws = this.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r
        JOIN messages m ON m.id = r.message_id LEFT JOIN destinations d ON d.key = r.destination
        WHERE r.state IN ${DUE_STATES_SQL} AND r.next_attempt_at <= @now AND m.held = 0 AND ${DEST_OPEN_SQL}
          AND r.destination NOT IN (SELECT value FROM json_each(@exclude))
        ORDER BY r.next_attempt_at, r.id LIMIT @limit`)
        .all({ now: req.now, exclude: JSON.stringify(req.excludeDestinations ?? []), limit: req.limit }) as RawRecipient[];
      const lease = this.st(`UPDATE recipients SET state = 'inflight', lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ?`);
      for (const raw of raws) lease.run(req.owner, req.leaseUntil, req.now, raw.id);
      return raws.map((raw) => ({ ...toRecipient(raw), state: 'inflight' as const, updatedAt: req.now }));
    });
  }

  async releaseExpiredLeases(now: number): Promise<number> {
    return this.write('releaseExpiredLeases', () => this.release(now, 'AND lease_until <= @now'));
  }

  async releaseAllInflight(now: number): Promise<number> {
    return this.write('releaseAllInflight', () => this.release(now, ''));
  }

  /** Back to due: 'deferred' if it was ever tried, else 'queued'; never earlier than it was due. */
  private release(now: number, condition: string): number {
    return this.st(`UPDATE recipients SET
        state = CASE WHEN attempts > 0 OR last_reply IS NOT NULL THEN 'deferred' ELSE 'queued' END,
        lease_owner = NULL, lease_until = NULL, next_attempt_at = MIN(next_attempt_at, @now), updated_at = @now
      WHERE state = 'inflight' ${condition}`).run({ now }).changes;
  }

  async recordOutcomes(outcomes: readonly RecipientOutcome[], now: number): Promise<void> {
    if (outcomes.length === 0) return;
    this.write('recordOutcomes', () => {
      // One statement per outcome: the state test is in the UPDATE itself (I1: a final state never changes;
      // a deleted recipient matches nothing), and RETURNING says which message may now be complete.
      const update = this.st(`UPDATE recipients SET state = @state, last_reply = @reply, attempts = attempts + @inc,
          next_attempt_at = COALESCE(@next, next_attempt_at), lease_owner = NULL, lease_until = NULL, updated_at = @now
        WHERE id = @id AND state NOT IN ${FINAL_SQL} RETURNING message_id`).pluck();
      const history = this.st('INSERT INTO attempts (recipient_id, at, state, reply) VALUES (?, ?, ?, ?)');
      for (const { recipientId, outcome } of outcomes) {
        const reply = JSON.stringify(outcome.reply);
        const messageId = update.get({
          id: recipientId, state: outcome.kind, reply, inc: attemptIncrement(outcome), now,
          next: outcome.kind === 'deferred' ? outcome.nextAttemptAt : null,
        }) as MessageId | undefined;
        if (messageId === undefined) {
          this.stats.ignoredOutcomes++;
          continue;
        }
        if (outcome.kind !== 'deferred') this.touched.add(messageId);
        history.run(recipientId, now, outcome.kind, reply);
      }
    });
  }

  async putDestination(row: DestinationRow): Promise<void> {
    this.write('putDestination', () => {
      this.st(`INSERT INTO destinations (key, health, backoff_until, backoff_ms, consecutive_failures, last_error, updated_at)
        VALUES (@key, @health, @backoffUntil, @backoffMs, @consecutiveFailures, @lastError, @updatedAt)
        ON CONFLICT(key) DO UPDATE SET health = excluded.health, backoff_until = excluded.backoff_until,
          backoff_ms = excluded.backoff_ms, consecutive_failures = excluded.consecutive_failures,
          last_error = excluded.last_error, updated_at = excluded.updated_at`)
        .run({ ...row, lastError: row.lastError ?? null });
    });
  }

  async flush(opts: { domain?: string; messageId?: MessageId; destination?: string; now: number }): Promise<number> {
    return this.write('flush', () => this.st(`UPDATE recipients SET next_attempt_at = @now, updated_at = @now
      WHERE state IN ${DUE_STATES_SQL} AND next_attempt_at > @now
        AND (@domain IS NULL OR domain = @domain) AND (@mid IS NULL OR message_id = @mid)
        AND (@dest IS NULL OR destination = @dest)`)
      .run({ now: opts.now, domain: opts.domain?.toLowerCase() ?? null, mid: opts.messageId ?? null, dest: opts.destination ?? null }).changes);
  }

  async setHeld(id: MessageId, held: boolean): Promise<boolean> {
    return this.write('setHeld', () => this.st('UPDATE messages SET held = ? WHERE id = ?').run(held ? 1 : 0, id).changes > 0);
  }

  async deleteMessages(ids: readonly MessageId[]): Promise<number> {
    return this.write('deleteMessages', () => {
      const del = this.st('DELETE FROM messages WHERE id = ?'); // cascades to body, recipients, attempts
      let n = 0;
      for (const id of ids) n += del.run(id).changes;
      return n;
    });
  }

  async markDsn(recipientIds: readonly number[], what: 'final' | 'delay'): Promise<void> {
    const column = what === 'final' ? 'dsn_done' : 'delay_notified';
    this.write('markDsn', () => {
      const mark = this.st(`UPDATE recipients SET ${column} = 1, updated_at = ? WHERE id = ? RETURNING message_id`).pluck();
      const now = this.clock();
      for (const id of recipientIds) {
        const mid = mark.get(now, id) as MessageId | undefined;
        if (mid !== undefined) this.touched.add(mid);
      }
    });
  }

  async removeCompleted(limit: number): Promise<MessageId[]> {
    return this.write('removeCompleted', () => {
      // Only messages touched since the last call can have become complete (plus, once, everything: at start-up),
      // so this stays O(what changed) rather than O(queue) on every scheduler pass.
      let candidates: MessageId[];
      if (this.scannedAll) {
        candidates = [...this.touched].slice(0, limit);
      } else {
        candidates = (this.st('SELECT id FROM messages ORDER BY id').pluck().all() as MessageId[]);
        this.scannedAll = true;
      }
      for (const id of candidates) this.touched.delete(id);
      const complete = this.st(`SELECT 1 FROM messages m WHERE m.id = ? AND NOT EXISTS (SELECT 1 FROM recipients r
          WHERE r.message_id = m.id AND (r.state NOT IN ${FINAL_SQL} OR (r.state <> 'delivered' AND r.dsn_done = 0)))`).pluck();
      const del = this.st('DELETE FROM messages WHERE id = ?');
      const ids: MessageId[] = [];
      for (const id of candidates) {
        if (ids.length >= limit) {
          this.touched.add(id);
          continue;
        }
        if (complete.get(id) !== undefined) {
          del.run(id);
          ids.push(id);
        }
      }
      return ids;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushBatches();
    this.closed = true;
    if (!this.readonly) {
      // Back to a rollback journal when this was the last connection, so read-only commands on a stopped
      // queue need no -wal/-shm files (see openReadonly). Busy (another connection open): stays WAL.
      try {
        this.db.pragma('busy_timeout = 0');
        this.db.pragma('journal_mode = DELETE');
      } catch { /* another process has the file open: it is still in use, WAL stays */ }
    }
    this.db.close();
  }

  // ---- helpers ----

  /** Prepared statements are cached by their text; the SQL above is all constant. */
  private st(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** One IMMEDIATE transaction; any failure becomes HAL_ERR_QUEUE_WRITE with the cause kept. */
  private write<T>(what: string, fn: () => T): T {
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

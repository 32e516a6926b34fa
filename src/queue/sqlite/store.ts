/**
 * queue/sqlite/store — the default durable queue: one SQLite file
 * (`<dataDir>/queue/queue.db`, WAL, synchronous=FULL) holding messages, their
 * bodies (large ones in spool segments beside it: queue/spool), recipients, attempt history, destination health and connection
 * slots; the three parts of the Queue (sqlite/messages, sqlite/recipients,
 * sqlite/gate) over one handle (sqlite/db).
 *
 * better-sqlite3 is synchronous; the methods are async only to honour the
 * interfaces. A busy database blocks the event loop up to busy_timeout, which
 * is why the server runs this in a thread of its own (queue/sqlite/worker-store);
 * CLI commands and tests open it directly.
 */
import { HalcyonError } from '../../errors.js';
import { closeDatabase, openDatabase, SqliteDb, type SqliteQueueOptions, type SqliteStoreStats } from './db.js';
import { SqliteDestinationGate } from './gate.js';
import { SqliteMessageStore } from './messages.js';
import { SqliteRecipientQueue } from './recipients.js';
import { BodySpool } from '../spool.js';
import type { Queue } from '../store.js';
import { SqliteEventOutbox } from './events.js';
import { SqliteVerifyCache } from './verify-cache.js';
import { SqliteTlsReports } from './tls-reports.js';
import { SqliteSuppressionList } from './suppression.js';
import { SqliteIdempotencyStore } from './idempotency.js';
import { join } from 'node:path';
import { QueueHealth } from '../health.js';

export type { SqliteQueueOptions, SqliteStoreStats } from './db.js';
export { NoQueueError } from './db.js';
export { BATCH_MAX_BYTES, BATCH_MAX_MESSAGES, SPOOL_MIN_BYTES } from './messages.js';

/** How often a turn also removes spool segments nothing refers to any more. */
const SPOOL_COLLECT_EVERY_MS = 60_000;

export class SqliteQueue implements Queue {
  readonly messages: SqliteMessageStore;
  readonly recipients: SqliteRecipientQueue;
  readonly gate: SqliteDestinationGate;
  readonly events: SqliteEventOutbox;
  readonly verifications: SqliteVerifyCache;
  readonly tlsReports: SqliteTlsReports;
  readonly suppressions: SqliteSuppressionList;
  readonly idempotency: SqliteIdempotencyStore;
  /** Opened directly (CLI commands): an error reaches the command that made the call; the state stays ok. */
  readonly health = new QueueHealth();

  private lastCollect: number;

  constructor(private readonly d: SqliteDb, private readonly spool: BodySpool) {
    this.messages = new SqliteMessageStore(d, spool);
    // Real time, not the queue's clock: segment ages are about files on disk (a test's fake clock may stand still).
    this.lastCollect = Date.now();
    this.recipients = new SqliteRecipientQueue(d);
    this.gate = new SqliteDestinationGate(d);
    this.events = new SqliteEventOutbox(d);
    this.verifications = new SqliteVerifyCache(d);
    this.tlsReports = new SqliteTlsReports(d);
    this.suppressions = new SqliteSuppressionList(d);
    this.idempotency = new SqliteIdempotencyStore(d);
  }

  get stats(): SqliteStoreStats {
    return this.d.stats;
  }

  /**
   * Runs `fn` and the enqueues waiting for the next turn inside one outer transaction (each write
   * nests as a savepoint, so one failing write does not undo the others): one commit, one fsync, for
   * all of it. Throws HAL_ERR_QUEUE_WRITE when the commit itself fails; then nothing of it is durable.
   * `fsync: false` only for turns whose writes a restart undoes anyway (store-worker's NO_FSYNC).
   */
  turn(fn: () => void, opts: { readonly fsync?: boolean } = {}): void {
    if (this.d.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue is closed');
    // `fsync: false` (store-worker's turns of reads and leases only): committed to the WAL without waiting for the
    // disk; the next durable commit fsyncs it. The safety level can only change outside a transaction.
    const lax = opts.fsync === false;
    try {
      if (lax) this.d.db.pragma('synchronous = NORMAL');
      this.d.db.transaction(() => {
        fn();
        this.messages.flushPending();
      }).immediate();
    } catch (err) {
      throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', String(err), { cause: err });
    } finally {
      if (lax) this.d.db.pragma('synchronous = FULL');
    }
    const now = Date.now();
    if (now - this.lastCollect >= SPOOL_COLLECT_EVERY_MS) {
      this.lastCollect = now;
      this.collectSpool();
    }
  }

  /** Removes spool segments that no message refers to any more; never fails the caller. */
  collectSpool(): number {
    try {
      return this.messages.collectSpool();
    } catch {
      return 0; // a read error here costs only disk space until the next try
    }
  }

  async close(): Promise<void> {
    if (this.d.closed) return;
    this.messages.flushPending();
    this.d.closed = true;
    this.spool.close();
    closeDatabase(this.d.db);
  }
}

export async function openSqliteQueue(opts: SqliteQueueOptions): Promise<SqliteQueue> {
  const clock = opts.clock ?? Date.now;
  return new SqliteQueue(new SqliteDb(openDatabase(opts), clock, opts.events), new BodySpool(join(opts.dataDir, 'queue')));
}

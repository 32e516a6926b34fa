/**
 * queue/sqlite-store — the default durable queue: one SQLite file
 * (`<dataDir>/queue/queue.db`, WAL, synchronous=FULL) holding messages, their
 * bodies, recipients, attempt history, destination health and connection
 * slots; the three parts of the Queue (sqlite-messages, sqlite-recipients,
 * sqlite-gate) over one handle (sqlite-db).
 *
 * better-sqlite3 is synchronous; the methods are async only to honour the
 * interfaces. A busy database blocks the event loop up to busy_timeout, which
 * is why the server runs this in a thread of its own (queue/worker-store);
 * CLI commands and tests open it directly.
 */
import { HalcyonError } from '../errors.js';
import { closeDatabase, openDatabase, SqliteDb, type SqliteQueueOptions, type SqliteStoreStats } from './sqlite-db.js';
import { SqliteDestinationGate } from './sqlite-gate.js';
import { SqliteMessageStore } from './sqlite-messages.js';
import { SqliteRecipientQueue } from './sqlite-recipients.js';
import type { Queue } from './store.js';

export type { SqliteQueueOptions, SqliteStoreStats } from './sqlite-db.js';
export { NoQueueError } from './sqlite-db.js';
export { BATCH_MAX_BYTES, BATCH_MAX_MESSAGES } from './sqlite-messages.js';

export class SqliteQueue implements Queue {
  readonly messages: SqliteMessageStore;
  readonly recipients: SqliteRecipientQueue;
  readonly gate: SqliteDestinationGate;

  constructor(private readonly d: SqliteDb) {
    this.messages = new SqliteMessageStore(d);
    this.recipients = new SqliteRecipientQueue(d);
    this.gate = new SqliteDestinationGate(d);
  }

  get stats(): SqliteStoreStats {
    return this.d.stats;
  }

  /**
   * Runs `fn` and the enqueues waiting for the next turn inside one outer transaction (each write
   * nests as a savepoint, so one failing write does not undo the others): one commit, one fsync, for
   * all of it. Throws HAL_ERR_QUEUE_WRITE when the commit itself fails; then nothing of it is durable.
   */
  turn(fn: () => void): void {
    if (this.d.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue is closed');
    try {
      this.d.db.transaction(() => {
        fn();
        this.messages.flushPending();
      }).immediate();
    } catch (err) {
      throw err instanceof HalcyonError ? err : new HalcyonError('HAL_ERR_QUEUE_WRITE', String(err), { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.d.closed) return;
    this.messages.flushPending();
    this.d.closed = true;
    closeDatabase(this.d.db);
  }
}

export async function openSqliteQueue(opts: SqliteQueueOptions): Promise<SqliteQueue> {
  return new SqliteQueue(new SqliteDb(openDatabase(opts), opts.clock ?? Date.now));
}

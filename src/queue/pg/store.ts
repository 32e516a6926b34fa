/**
 * queue/pg/store — the shared queue for several nodes: the three parts of the
 * Queue (pg/messages, pg/recipients, pg/gate) over one PostgreSQL pool
 * (pg/db). The schema is created or migrated on open (under an advisory
 * lock), as `halcyon serve` and `halcyon queue migrate` do.
 *
 * Every node opens its own pool; what they share is the database. The pg
 * driver is asynchronous already, so no worker thread is needed.
 *
 * Losing the database makes `health` unavailable (pg/db says which errors
 * mean that); its probe, a `SELECT 1` with backoff, makes it ok again.
 */
import { QueueHealth } from '../health.js';
import { createPool, migratePg, PgDb, type PgQueueOptions } from './db.js';
import { PgDestinationGate } from './gate.js';
import { PgMessageStore } from './messages.js';
import { PgRecipientQueue } from './recipients.js';
import type { Queue } from '../store.js';
import { PgEventOutbox } from './events.js';
import { PgVerifyCache } from './verify-cache.js';
import { PgTlsReports } from './tls-reports.js';
import { PgSuppressionList } from './suppression.js';
import { PgIdempotencyStore } from './idempotency.js';

export type { PgQueueOptions } from './db.js';

export class PgQueue implements Queue {
  readonly messages: PgMessageStore;
  readonly recipients: PgRecipientQueue;
  readonly gate: PgDestinationGate;
  readonly events: PgEventOutbox;
  readonly verifications: PgVerifyCache;
  readonly tlsReports: PgTlsReports;
  readonly suppressions: PgSuppressionList;
  readonly idempotency: PgIdempotencyStore;
  readonly health: QueueHealth;

  constructor(private readonly d: PgDb) {
    this.health = d.health;
    this.messages = new PgMessageStore(d);
    this.recipients = new PgRecipientQueue(d);
    this.gate = new PgDestinationGate(d);
    this.events = new PgEventOutbox(d);
    this.verifications = new PgVerifyCache(d);
    this.tlsReports = new PgTlsReports(d);
    this.suppressions = new PgSuppressionList(d);
    this.idempotency = new PgIdempotencyStore(d);
  }

  async close(): Promise<void> {
    if (this.d.closed) return;
    this.health.close();
    this.messages.flushPending();
    this.recipients.outcomes.flushPending();
    await Promise.allSettled([...this.messages.inFlight, ...this.recipients.outcomes.inFlight]);
    this.d.closed = true;
    await this.d.pool.end();
  }
}

export async function openPgQueue(opts: PgQueueOptions & { migrate?: boolean }): Promise<PgQueue> {
  const pool = createPool(opts);
  try {
    if (opts.migrate !== false) await migratePg(pool);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  const health = new QueueHealth({ probe: async () => { await pool.query('SELECT 1'); } });
  return new PgQueue(new PgDb(pool, opts.clock ?? Date.now, health, opts.events));
}

/**
 * queue/open — opens the queue a configuration names ([queue] backend):
 * SQLite under data_dir (in its worker thread for the server, directly for
 * CLI commands), or the shared PostgreSQL database (created or migrated on
 * open). The one place that knows which implementations exist; each is
 * imported only when a queue of its kind is opened (a CLI command on SQLite
 * never loads the PostgreSQL client, nor the other way round).
 */
import type { Config } from '../config/schema.js';
import { eventSinks } from '../config/event-sinks.js';
import { HalcyonError } from '../errors.js';
import type { EventRoutes } from './event.js';
import type { Queue } from './store.js';

export interface OpenQueueOptions {
  readonly clock?: () => number;
  /** The server: SQLite runs in a worker thread so its fsyncs never stall sessions. */
  readonly server?: boolean;
}

export function usesPostgres(cfg: Config): boolean {
  return cfg.queue.backend === 'postgres';
}

/** Which sinks each state change writes an event row for, and the node that writes it. */
export function eventRoutes(cfg: Config): EventRoutes {
  return { node: cfg.node_id, sinks: eventSinks(cfg).map((s) => ({ name: s.name, events: s.events })) };
}

export async function openQueue(cfg: Config, opts: OpenQueueOptions = {}): Promise<Queue> {
  const events = eventRoutes(cfg);
  if (cfg.queue.backend === 'postgres') {
    if (cfg.queue.url === undefined) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue backend "postgres" needs [queue] url');
    return (await import('./pg/store.js')).openPgQueue({ url: cfg.queue.url, clock: opts.clock, events, preparedStatements: cfg.queue.prepared_statements });
  }
  return opts.server ? (await import('./sqlite/worker-store.js')).WorkerQueue.open({ dataDir: cfg.data_dir, clock: opts.clock, events })
    : (await import('./sqlite/store.js')).openSqliteQueue({ dataDir: cfg.data_dir, clock: opts.clock, events });
}

/**
 * queue/open — opens the queue a configuration names ([queue] backend):
 * SQLite under data_dir (in its worker thread for the server, directly for
 * CLI commands), or the shared PostgreSQL database (created or migrated on
 * open). The one place that knows which implementations exist.
 */
import type { Config } from '../config/schema.js';
import { HalcyonError } from '../errors.js';
import { openPgQueue } from './pg/store.js';
import { openSqliteQueue } from './sqlite/store.js';
import type { Queue } from './store.js';
import { WorkerQueue } from './sqlite/worker-store.js';

export interface OpenQueueOptions {
  readonly clock?: () => number;
  /** The server: SQLite runs in a worker thread so its fsyncs never stall sessions. */
  readonly server?: boolean;
}

export function usesPostgres(cfg: Config): boolean {
  return cfg.queue.backend === 'postgres';
}

export async function openQueue(cfg: Config, opts: OpenQueueOptions = {}): Promise<Queue> {
  if (cfg.queue.backend === 'postgres') {
    if (cfg.queue.url === undefined) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue backend "postgres" needs [queue] url');
    return openPgQueue({ url: cfg.queue.url, clock: opts.clock });
  }
  return opts.server ? WorkerQueue.open({ dataDir: cfg.data_dir, clock: opts.clock }) : openSqliteQueue({ dataDir: cfg.data_dir, clock: opts.clock });
}

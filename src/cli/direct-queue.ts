/**
 * cli/direct-queue — opens the queue a CLI command reads or changes itself,
 * without the server: the shared PostgreSQL queue (the whole cluster's,
 * whichever node the command runs on) or the SQLite file in data_dir (beside
 * a running server, WAL makes that safe).
 *
 * The one place a command opens the store: as the data directory's owner when
 * it may write (a root `halcyon` must not leave root-owned files), never an
 * empty queue over one that lost its file (queue/sqlite/check), and only
 * 'create' (sendmail) may make one — and mark it. Loads only the store this
 * configuration uses; does not format or decide anything.
 */
import type { Config } from '../config/schema.js';
import { eventRoutes, openQueue, usesPostgres } from '../queue/open.js';
import type { Queue } from '../queue/store.js';
import { actAsDataDirOwner } from './data-owner.js';

/** 'readonly' reads; 'existing' changes a queue that must exist; 'create' may make one (sendmail). */
export type DirectAccess = 'readonly' | 'existing' | 'create';

/** Throws NoQueueError (queue/sqlite/db) where there is no SQLite queue and `access` is not 'create'. */
export async function openDirectQueue(cfg: Config, access: DirectAccess): Promise<Queue> {
  if (access !== 'readonly') actAsDataDirOwner(cfg.data_dir);
  if (usesPostgres(cfg)) return openQueue(cfg);
  const [{ assertQueueFit, markQueueCreated }, { openSqliteQueue }] = await Promise.all([import('../queue/sqlite/check.js'), import('../queue/sqlite/store.js')]);
  // The full check is serve's and `queue check`'s; this one only refuses a queue that lost its file.
  assertQueueFit(cfg.data_dir, { integrity: false });
  const store = await openSqliteQueue({ dataDir: cfg.data_dir, access, events: eventRoutes(cfg) });
  if (access === 'create') markQueueCreated(cfg.data_dir);
  return store;
}

/**
 * Runs `fn` on the queue and closes it. Where there is no queue, says so on stderr, sets exit code 1
 * and returns undefined.
 */
export async function withDirectQueue<T>(cfg: Config, access: DirectAccess, fn: (q: Queue) => Promise<T>): Promise<T | undefined> {
  let store: Queue;
  try {
    store = await openDirectQueue(cfg, access);
  } catch (err) {
    if (!(err instanceof (await import('../queue/sqlite/db.js')).NoQueueError)) throw err;
    process.stderr.write(`halcyon: ${err.message}\n`);
    process.exitCode = 1;
    return undefined;
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

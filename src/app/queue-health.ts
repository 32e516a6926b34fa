/**
 * app/queue-health — the log lines for a change of the queue's health
 * (queue/health): one line per change, not one per message.
 *
 * Failed or unavailable: new mail gets 451 4.3.0, nothing is claimed,
 * /api/health answers 503. Unavailable ends by itself (the probe), failed at
 * restart. Decides nothing: queue/health does.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Queue } from '../queue/store.js';
import { usesPostgres } from '../queue/open.js';
import { PROBE_INITIAL_MS, PROBE_MAX_MS } from '../queue/health.js';
import { queueFiles } from '../queue/sqlite/check.js';

export function logQueueHealth(cfg: Config, store: Queue, log: Logger, onRestored: () => void): void {
  store.health.onChange((change) => {
    const err = change.error?.message ?? '';
    if (change.state === 'failed') {
      const file = usesPostgres(cfg) ? cfg.queue.url : queueFiles(cfg.data_dir).db;
      log.error({ event: 'queue_storage_failed', file, err },
        `queue storage failed (${file}): ${err}; new mail gets 451 4.3.0 and no delivery is started. Stop the server and run 'halcyon queue check' (then 'halcyon queue salvage' if it reports damage)`);
    } else if (change.state === 'unavailable') {
      log.error({ event: 'queue_unavailable', err },
        `queue database unreachable: ${err}; new mail gets 451 4.3.0 and nothing is claimed until it answers again (retrying every ${PROBE_INITIAL_MS / 1000}-${PROBE_MAX_MS / 1000} s)`);
    } else {
      log.warn({ event: 'queue_restored', down_ms: change.downMs }, `queue database reachable again after ${((change.downMs ?? 0) / 1000).toFixed(1)} s; accepting and delivering`);
      onRestored();
    }
  });
}

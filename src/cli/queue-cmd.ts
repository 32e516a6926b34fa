/**
 * cli/queue-cmd — `halcyon queue …`: inspects the queue in data_dir.
 *
 * Opens the SQLite store directly; WAL mode lets it read while a server
 * runs. Mutating commands go through the same Store, whose transactions keep
 * the queue consistent when both are used at once.
 */
import type { Command } from 'commander';
import { configFileFrom, loadConfig } from '../config/load.js';
import { parseDuration } from '../config/units.js';
import type { RecipientState } from '../queue/model.js';
import { openSqliteStore } from '../queue/sqlite-store.js';
import { formatQueueList } from './format.js';

export function registerQueueCommands(program: Command): void {
  const queue = program.command('queue').description('Inspect and manage the queue');
  queue.command('list')
    .description('List queued messages with each recipient\'s state and last reply')
    .option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .option('--domain <domain>', 'only recipients at this domain')
    .option('--state <state>', 'only recipients in this state')
    .option('--older-than <duration>', 'only messages older than this ("1h")')
    .option('--json', 'JSON output')
    .action(async (opts: { config?: string; domain?: string; state?: RecipientState; olderThan?: string; json?: boolean }) => {
      const cfg = loadConfig(configFileFrom(opts.config));
      const store = await openSqliteStore({ dataDir: cfg.data_dir });
      try {
        const age = opts.olderThan ? parseDuration(opts.olderThan) : undefined;
        if (opts.olderThan && age === undefined) throw new Error(`not a duration: ${opts.olderThan}`);
        const list = await store.listMessages({ domain: opts.domain, state: opts.state, olderThan: age === undefined ? undefined : Date.now() - age });
        process.stdout.write(opts.json ? `${JSON.stringify(list, null, 2)}\n` : formatQueueList(list, Date.now()));
      } finally {
        await store.close();
      }
    });
}

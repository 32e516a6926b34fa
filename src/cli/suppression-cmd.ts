/**
 * cli/suppression-cmd — `halcyon suppression list|add|remove|import|export`:
 * the suppression list (queue/suppression), through the running server's
 * admin API or the data_dir store (cli/backend), like the queue commands.
 * `list` shows each entry's why (class and the reply that caused it) and
 * when (since, until); `export` writes CSV to stdout and `import` reads the
 * same from a file or stdin ("-"). Exit codes as `queue`: 0 done, 1 failure,
 * 2 usage or a bad entry, 3 nothing matched.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { SuppressionView } from '../http/admin-suppression.js';
import { replyLine } from '../queue/suppression.js';
import { printable } from './format.js';
import { common, print, withBackend, type Common } from './queue-cmd.js';

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function formatSuppressions(list: readonly SuppressionView[]): string {
  if (list.length === 0) return 'the suppression list is empty\n';
  return list.map((e) => `${printable(e.address)}  ${e.class}  since ${iso(e.since)}  until ${iso(e.until)}${e.active ? '' : ' (expired)'}  ${e.source}${e.queueId ? ` ${e.queueId}` : ''}\n`
    + `    ${printable(replyLine(e.reply))}\n`).join('');
}

export function registerSuppressionCommands(program: Command): void {
  const s = program.command('suppression').description('The suppression list: addresses not tried again after a permanent failure (docs/operations.md)');
  common(s.command('list').description('Entries in force, with why and when').argument('[text]', 'only addresses containing this'))
    .option('--all', 'expired entries too')
    .option('--limit <n>', 'at most this many', (v) => Number(v))
    .action((text: string | undefined, opts: Common & { all?: boolean; limit?: number }) => withBackend(opts, async (b) => {
      const list = await b.suppressions({ q: text, all: opts.all, limit: opts.limit });
      print(opts.json, list, formatSuppressions(list));
    }, 'readonly'));
  common(s.command('add').description('Suppress an address').argument('<address>'))
    .option('--class <class>', 'bounce class (default InvalidRecipient)')
    .option('--reason <text>', 'why (shown as the entry\'s reply)')
    .option('--ttl <duration>', 'how long (default suppression.ttl)')
    .action((address: string, opts: Common & { class?: string; reason?: string; ttl?: string }) => withBackend(opts, async (b) => {
      const e = await b.suppress({ address, ...(opts.class ? { class: opts.class } : {}), ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.ttl ? { ttl: opts.ttl } : {}) });
      print(opts.json, e, `suppressed ${printable(e.address)} (${e.class}) until ${iso(e.until)}\n`);
    }));
  common(s.command('remove').description('Take addresses off the list').argument('<address...>'))
    .action((addresses: string[], opts: Common) => withBackend(opts, async (b) => {
      const r = await b.unsuppress(addresses);
      print(opts.json, r, `removed ${r.removed} of ${addresses.length}\n`);
      if (r.removed === 0) process.exitCode = 3;
    }));
  common(s.command('import').description('Add the entries of a CSV file (the export\'s columns; only address is required)').argument('<file>', 'CSV file, or - for stdin'))
    .action((file: string, opts: Common) => withBackend(opts, async (b) => {
      const csv = readFileSync(file === '-' ? 0 : file, 'utf8');
      const r = await b.importSuppressions(csv);
      print(opts.json, r, `imported ${r.imported} address(es)\n`);
    }));
  common(s.command('export').description('The list as CSV on stdout (address,class,since,until,source,queue_id,reply)'), false)
    .option('--all', 'expired entries too')
    .action((opts: Common & { all?: boolean }) => withBackend(opts, async (b) => {
      process.stdout.write(await b.exportSuppressions(opts.all));
    }, 'readonly'));
}

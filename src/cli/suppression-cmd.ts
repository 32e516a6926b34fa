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
import type { SuppressionView } from '../http/admin-suppression.js';
import { isoSecond as iso, replyLine } from '../queue/suppression.js';
import { printable } from './format.js';
import { print, withBackend, type Common } from './queue-cmd.js';

export function formatSuppressions(list: readonly SuppressionView[]): string {
  if (list.length === 0) return 'the suppression list is empty\n';
  return list.map((e) => `${printable(e.address)}  ${e.class}  since ${iso(e.since)}  until ${iso(e.until)}${e.active ? '' : ' (expired)'}  ${e.source}${e.queueId ? ` ${e.queueId}` : ''}\n`
    + `    ${printable(replyLine(e.reply))}\n`).join('');
}

/** `halcyon suppression list [TEXT]`. */
export function suppressionList(text: string | undefined, opts: Common & { all?: boolean; limit?: number }): Promise<void> {
  return withBackend(opts, async (b) => {
    const list = await b.suppressions({ q: text, all: opts.all, limit: opts.limit });
    print(opts.json, list, formatSuppressions(list));
  }, 'readonly');
}

/** `halcyon suppression add ADDRESS`. */
export function suppressionAdd(address: string, opts: Common & { class?: string; reason?: string; ttl?: string }): Promise<void> {
  return withBackend(opts, async (b) => {
    const e = await b.suppress({ address, ...(opts.class ? { class: opts.class } : {}), ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.ttl ? { ttl: opts.ttl } : {}) });
    print(opts.json, e, `suppressed ${printable(e.address)} (${e.class}) until ${iso(e.until)}\n`);
  });
}

/** `halcyon suppression remove ADDRESS…`. */
export function suppressionRemove(addresses: string[], opts: Common): Promise<void> {
  return withBackend(opts, async (b) => {
    const r = await b.unsuppress(addresses);
    print(opts.json, r, `removed ${r.removed} of ${addresses.length}\n`);
    if (r.removed === 0) process.exitCode = 3;
  });
}

/** `halcyon suppression import FILE|-`. */
export function suppressionImport(file: string, opts: Common): Promise<void> {
  return withBackend(opts, async (b) => {
    const csv = readFileSync(file === '-' ? 0 : file, 'utf8');
    const r = await b.importSuppressions(csv);
    print(opts.json, r, `imported ${r.imported} address(es)\n`);
  });
}

/** `halcyon suppression export`. */
export function suppressionExport(opts: Common & { all?: boolean }): Promise<void> {
  return withBackend(opts, async (b) => {
    process.stdout.write(await b.exportSuppressions(opts.all));
  }, 'readonly');
}

/**
 * cli/tenant-cmd — `halcyon tenant list|suspend|resume`: a tenant's
 * suspensions (queue/tenant-holds), through the running server's admin
 * API or the data_dir store (cli/backend), like the queue commands. A
 * suspension holds everywhere, or with `--destination` at one destination
 * key, domain or `provider:NAME`; it lasts `--for` or until resumed; a
 * resume ends a reply rule's suspension too. Exit codes as `queue`: 0 done,
 * 1 failure, 2 usage, 3 nothing to resume.
 */
import { formatTenants } from './tenant-format.js';
import { holdText } from '../queue/describe-tenants.js';
import { printable } from './format.js';
import { print, withBackend, type Common } from './queue-cmd.js';

/** `halcyon tenant list`. */
export function tenantList(opts: Common): Promise<void> {
  return withBackend(opts, async (b) => {
    const r = await b.tenants();
    print(opts.json, r, formatTenants(r, Date.now()));
  }, 'readonly');
}

/** `halcyon tenant suspend NAME [--destination D] [--for T]`. */
export function tenantSuspend(name: string, opts: Common & { destination?: string; for?: string }): Promise<void> {
  return withBackend(opts, async (b) => {
    const h = await b.suspendTenant(name, { ...(opts.destination ? { destination: opts.destination } : {}), ...(opts.for ? { for: opts.for } : {}) });
    print(opts.json, h, `tenant ${printable(h.tenant)} ${holdText(h, Date.now())}\n`);
  });
}

/** `halcyon tenant resume NAME [--destination D]`. */
export function tenantResume(name: string, opts: Common & { destination?: string }): Promise<void> {
  return withBackend(opts, async (b) => {
    const r = await b.resumeTenant(name, opts.destination ? { destination: opts.destination } : {});
    print(opts.json, r, `tenant ${printable(name)}: ${r.resumed} suspension(s) ended${opts.destination ? ` at ${printable(opts.destination)}` : ''}\n`);
    if (r.resumed === 0) process.exitCode = 3;
  });
}

/**
 * cli/tenant-format — the listing of `halcyon tenant list`: suspensions in
 * force, the configured tenants, waiting recipients per tenant and route key.
 * The wording of one suspension is queue/describe-tenants' (shared with the
 * dashboard); text from a remote or from mail goes through `printable`.
 * Pure: no I/O.
 */
import type { TenantsReport } from '../http/admin-tenants.js';
import { printable } from '../queue/describe.js';
import { holdText, untilText } from '../queue/describe-tenants.js';

/** `halcyon tenant list`: suspensions in force, the configured tenants (and rate state), waiting recipients per route key. */
export function formatTenants(r: TenantsReport, now: number): string {
  const out: string[] = [];
  out.push(r.holds.length === 0 ? 'No tenant is suspended' : 'Suspended:');
  for (const h of r.holds) out.push(`  ${printable(h.tenant)}  ${holdText(h, now)}${h.manual ? '' : ' (reply rule)'}`);
  if (r.tenants.length > 0) {
    out.push('Tenants:');
    for (const t of r.tenants) {
      const limited = t.rateLimitedUntil !== undefined && t.rateLimitedUntil > now ? `, over its rate ${untilText(t.rateLimitedUntil, now)}` : '';
      out.push(`  ${printable(t.tenant)}  rate=${t.rate ?? '-'} weight=${t.weight}${limited}`);
    }
  }
  if (r.queued.length > 0) {
    out.push('Waiting:');
    for (const q of r.queued) out.push(`  ${printable(q.tenant)}  ${printable(q.destination)}  ${q.queued}`);
  }
  return `${out.join('\n')}\n`;
}

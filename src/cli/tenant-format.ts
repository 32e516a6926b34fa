/**
 * cli/tenant-format — text renderings of tenant limits: a tenant's line under
 * its destination in `halcyon destinations`, a suspension, and the listing
 * of `halcyon tenant list`. Text that came from a remote or from mail (a
 * reply, a tenant name) is printed through `printable`. Pure: no I/O.
 */
import type { DestinationTenant, TenantsReport } from '../http/admin-tenants.js';
import type { TenantHold } from '../queue/tenant-holds.js';
import { NEVER } from '../queue/destination-gate.js';
import { age, printable } from '../queue/describe.js';

/** "until 2026-12-07T07:00:00.000Z (59m)" or "until resumed". */
const until = (t: number, now: number): string => (t >= NEVER ? 'until resumed' : `until ${new Date(t).toISOString()} (${age(Math.max(0, t - now))})`);

/** "suspended at mx:… until … : why" — one suspension. */
export function holdText(h: TenantHold, now: number): string {
  return `suspended at ${printable(h.scope)} ${until(h.until, now)}: ${printable(h.why)}`;
}

/** A tenant's line under its destination: "  tenant acme: 12 queued, suspended at … until …: why". */
export function destinationTenantLine(t: DestinationTenant, now: number): string {
  const states = [
    ...(t.held ? [holdText(t.held, now)] : []),
    ...(t.rateLimitedUntil !== undefined && t.rateLimitedUntil > now ? [`over its rate ${until(t.rateLimitedUntil, now)}`] : []),
  ];
  return `  tenant ${printable(t.tenant)}: ${t.queued} queued${states.length > 0 ? `, ${states.join(', ')}` : ''}`;
}

/** `halcyon tenant list`: suspensions in force, the configured tenants (and rate state), waiting recipients per route key. */
export function formatTenants(r: TenantsReport, now: number): string {
  const out: string[] = [];
  out.push(r.holds.length === 0 ? 'No tenant is suspended' : 'Suspended:');
  for (const h of r.holds) out.push(`  ${printable(h.tenant)}  ${holdText(h, now)}${h.manual ? '' : ' (reply rule)'}`);
  if (r.tenants.length > 0) {
    out.push('Tenants:');
    for (const t of r.tenants) {
      const limited = t.rateLimitedUntil !== undefined && t.rateLimitedUntil > now ? `, over its rate ${until(t.rateLimitedUntil, now)}` : '';
      out.push(`  ${printable(t.tenant)}  rate=${t.rate ?? '-'} weight=${t.weight}${limited}`);
    }
  }
  if (r.queued.length > 0) {
    out.push('Waiting:');
    for (const q of r.queued) out.push(`  ${printable(q.tenant)}  ${printable(q.destination)}  ${q.queued}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * queue/describe-tenants — how a tenant's state reads to a person, for the
 * CLI (`halcyon destinations`, `halcyon tenant`) and the dashboard alike: a
 * suspension (where, until when or "until resumed", why) and a tenant's line
 * under its destination (waiting recipients, suspended, over its rate).
 * Names and replies go through queue/describe's `printable`.
 *
 * The dashboard serves this file to the browser as it is (http/dashboard):
 * besides types it imports only queue/describe and the gate's NEVER
 * (queue/destination-gate, served too), both without Node APIs at load.
 */
import type { DestinationTenant } from '../http/admin-tenants.js';
import { NEVER } from './destination-gate.js';
import { age, printable } from './describe.js';
import type { TenantHold } from './tenant-holds.js';

/** "until 2026-12-07T07:00:00.000Z (59m)" or "until resumed". */
export const untilText = (t: number, now: number): string => (t >= NEVER ? 'until resumed' : `until ${new Date(t).toISOString()} (${age(Math.max(0, t - now))})`);

/** "suspended at mx:… until …: why" — one suspension. */
export function holdText(h: TenantHold, now: number): string {
  return `suspended at ${printable(h.scope)} ${untilText(h.until, now)}: ${printable(h.why)}`;
}

/** A tenant under its destination: "tenant acme: 12 queued, suspended at … until …: why". */
export function destinationTenantLine(t: DestinationTenant, now: number): string {
  const states = [
    ...(t.held ? [holdText(t.held, now)] : []),
    ...(t.rateLimitedUntil !== undefined && t.rateLimitedUntil > now ? [`over its rate${t.rate !== undefined ? ` (${printable(t.rate)})` : ''} ${untilText(t.rateLimitedUntil, now)}`] : []),
  ];
  return `tenant ${printable(t.tenant)}: ${t.queued} queued${states.length > 0 ? `, ${states.join(', ')}` : ''}`;
}

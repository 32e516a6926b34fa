/**
 * queue/tenant-holds — a tenant's suspensions as pure functions: where
 * they are kept, what a stored one says now, which apply to a delivery, and
 * what the claim must leave out (docs/shaping.md "Tenant limits",
 * docs/decisions/0019-tenant-limits.md).
 *
 * A hold is a gate row (queue/destination-gate) of its own, so every node
 * and the next start see it: key `tenant:<scope> <tenant>`, where the scope
 * is `*` (everywhere), a destination key (`mx:…`, `route:…`), a route key
 * (a domain) or a provider scope (`provider:<name>`). A scope never holds a
 * space; a tenant name may, so the key splits at its first space.
 * Both kinds are rules in force on the row's limits (action `suspend`,
 * merged by mergeLimits like a destination's rules, so what two nodes write
 * at once both survive); the row's health stays `ok` (it is no destination:
 * nothing counts it as a suspended one).
 * - A `suspend_tenant` rule's carries the rule's index and the reply.
 * - An administrator's (`halcyon tenant suspend`) has index MANUAL, until
 *   NEVER when it lasts until resumed; a resume clears the row.
 *
 * No I/O, no clock (callers pass `now`), no state.
 */
import { NEVER } from './destination-gate.js';
import type { DestinationRow, DestinationRule } from './model.js';

/** Every hold row's key starts with this (DestinationGate.listRows). */
export const HOLD_PREFIX = 'tenant:';
/** The scope of a hold that applies at every destination. */
export const EVERYWHERE = '*';
/** The rule index of an administrator's suspension (a reply rule's is ≥ 0). */
export const MANUAL = -1;

/** A tenant's suspension in force: where, until when (NEVER: until resumed), and why (a rule and its reply, or who). */
export interface TenantHold {
  readonly tenant: string;
  readonly scope: string;
  readonly until: number;
  readonly since: number;
  readonly why: string;
  /** An administrator's (else a reply rule's). */
  readonly manual: boolean;
}

export const holdKey = (tenant: string, scope: string = EVERYWHERE): string => `${HOLD_PREFIX}${scope} ${tenant}`;

/** The tenant and scope a hold row's key names; undefined for a key that is not one. */
export function parseHoldKey(key: string): { readonly tenant: string; readonly scope: string } | undefined {
  if (!key.startsWith(HOLD_PREFIX)) return undefined;
  const space = key.indexOf(' ', HOLD_PREFIX.length);
  if (space <= HOLD_PREFIX.length || space === key.length - 1) return undefined;
  return { scope: key.slice(HOLD_PREFIX.length, space), tenant: key.slice(space + 1) };
}

/** What a hold row says at `now`: the rule in force that lasts longest (an administrator's or a reply rule's); undefined when none. */
export function holdOf(row: Pick<DestinationRow, 'key' | 'limits'>, now: number): TenantHold | undefined {
  const at = parseHoldKey(row.key);
  if (!at) return undefined;
  const rule = (row.limits?.rules ?? []).filter((r) => r.action === 'suspend' && r.until > now).sort((a, b) => b.until - a.until)[0];
  if (!rule) return undefined;
  const manual = rule.index === MANUAL;
  return { ...at, until: rule.until, since: rule.since, why: manual ? rule.rule : `${rule.rule} after ${rule.reply}`, manual };
}

/** An administrator's suspension, as the rule written on the hold row (`forMs` undefined: until resumed). */
export function manualHold(now: number, forMs: number | undefined, who: string): DestinationRule {
  return { index: MANUAL, action: 'suspend', rule: `suspended by ${who}`, until: forMs === undefined ? NEVER : now + forMs, since: now, reply: '' };
}

/**
 * The hold in force over a delivery of `tenant` whose scopes are `scopes` (its route key, destination and
 * provider scope; `*` is always one): the one that lasts longest. Mail without a tenant ('') is never held.
 */
export function holdOver(holds: readonly TenantHold[], tenant: string, scopes: readonly string[], now: number): TenantHold | undefined {
  if (tenant === '') return undefined;
  const where = new Set([EVERYWHERE, ...scopes]);
  return holds.filter((h) => h.tenant === tenant && h.until > now && where.has(h.scope)).sort((a, b) => b.until - a.until)[0];
}

/**
 * What the claim leaves out for the holds in force: tenants held everywhere, and (route key, tenant) for each
 * route key known to be in a held scope (`scopesOf(routeKey)`: the route key itself, its destination, its
 * provider scope).
 */
export function claimExclusions(holds: readonly TenantHold[], routeKeys: Iterable<string>, scopesOf: (routeKey: string) => readonly string[], now: number):
  { readonly tenants: string[]; readonly pairs: { readonly destination: string; readonly tenant: string }[] } {
  const live = holds.filter((h) => h.until > now);
  const tenants = [...new Set(live.filter((h) => h.scope === EVERYWHERE).map((h) => h.tenant))];
  const scoped = live.filter((h) => h.scope !== EVERYWHERE);
  const pairs: { destination: string; tenant: string }[] = [];
  if (scoped.length > 0) {
    for (const routeKey of routeKeys) {
      const scopes = new Set([routeKey, ...scopesOf(routeKey)]);
      for (const tenant of new Set(scoped.filter((h) => scopes.has(h.scope)).map((h) => h.tenant))) pairs.push({ destination: routeKey, tenant });
    }
  }
  return { tenants, pairs };
}

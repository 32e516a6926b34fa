/**
 * destination/key — what a destination key is, as pure functions.
 *
 * A destination is the set of hosts mail goes to (spec invariant I5), not the
 * recipient domain: `mx:<host>,<host>` — the domain's MX host names,
 * lowercased, without trailing dot, de-duplicated and sorted, so that every
 * domain whose MX set is equal (thousands of Google Workspace customers, a
 * hosting company's customers) lands on ONE key, one backoff, one connection
 * pool, on every node. A domain without MX records (implicit MX, RFC 5321
 * §5.1) is the host set of itself: `mx:<domain>`. Routes keep `route:…` and
 * local mailboxes `local:…`; with `delivery.destination_by = "domain"` the
 * key is the domain, as before.
 *
 * With source addresses ([egress], destination/sources) politeness is kept per
 * (source, destination): the key of a destination reached from source `ip2`
 * is `<destination>@ip2` (`mx:a.example,b.example@ip2`, `provider:google@ip2`)
 * — its gate row, slots, token bucket, learned limits and rules in force. No
 * destination key holds an `@`, and source names cannot (config/schema), so
 * `splitSource` undoes `sourcedKey`. Without sources keys are as before.
 *
 * MX preferences are left out on purpose: a provider that reorders its
 * preferences is still the same hosts. What it does not do: DNS (the
 * scheduler's destination map asks the resolver and caches the answer).
 */
import { normalizeDomain } from '../delivery/route.js';

export const MX_PREFIX = 'mx:';

/** The key of a set of MX host names (at least one). */
export function mxDestinationKey(hosts: readonly string[]): string {
  const set = [...new Set(hosts.map(normalizeDomain).filter((h) => h !== ''))].sort();
  if (set.length === 0) throw new RangeError('mxDestinationKey: an empty host set');
  return `${MX_PREFIX}${set.join(',')}`;
}

/** The key of `destination` as reached from `source` (undefined: no source, the destination key itself). */
export const sourcedKey = (destination: string, source: string | undefined): string => (source === undefined ? destination : `${destination}@${source}`);

/** A key's destination and source: the inverse of sourcedKey. */
export function splitSource(key: string): { readonly destination: string; readonly source?: string } {
  const at = key.lastIndexOf('@');
  return at < 0 ? { destination: key } : { destination: key.slice(0, at), source: key.slice(at + 1) };
}

/** The MX hosts of an `mx:` destination key (a sourced one too), the inverse of mxDestinationKey (none for routes, local keys and bare domains). */
export function hostsOf(key: string): string[] {
  const destination = splitSource(key).destination;
  return destination.startsWith(MX_PREFIX) ? destination.slice(MX_PREFIX.length).split(',').filter((h) => h !== '') : [];
}

/** Keys the scheduler maps to a host set: plain domains (not routes, local mailboxes or address literals). */
export function isDomainKey(key: string): boolean {
  return key !== '' && !key.startsWith('route:') && !key.startsWith('local:') && !key.startsWith(MX_PREFIX) && !key.startsWith('[');
}

/**
 * delivery/resolve — where a recipient domain's mail goes: the ordered list
 * of next hops (host, address, port) for one delivery attempt, or why there
 * is none (a permanent failure or a temporary one).
 *
 * Order of decisions (each row is checked before the next):
 *
 * | input                                   | result                                                  |
 * |-----------------------------------------|---------------------------------------------------------|
 * | domain matches `routes` (exact, or "*") | route hosts, in config order; names → A/AAAA; no MX     |
 * |   … the route has a Unix `socket`       | that socket (LMTP)                                      |
 * | address literal "[192.0.2.1]"/"[IPv6:…]"| that address, delivery port                             |
 * | malformed address literal               | failed 550 5.1.2                                        |
 * | MX: one record, preference 0, "."       | failed 556 5.1.10 (RFC 7505 null MX)                    |
 * | MX: NXDOMAIN (ENOTFOUND)                | failed 550 5.1.2                                        |
 * | MX: no records (ENODATA)                | implicit MX (RFC 5321 §5.1): the domain's own A/AAAA    |
 * |   … and the domain has no address       | failed 550 5.1.2                                        |
 * | MX: any other error (SERVFAIL, timeout, | deferred 451 4.4.3                                      |
 * |     refused, bad response …)            |                                                         |
 * | MX records                              | by preference ascending, equal ones shuffled, first     |
 * |                                         | `maxHosts` hosts, each → A then AAAA                    |
 * |   … no MX host has an address           | deferred 451 4.4.4                                      |
 *
 * Choices, written where they are made:
 * - Address family order: per host, IPv4 addresses first, then IPv6. Mail
 *   hosts' outbound IPv6 often lacks the PTR and reputation receivers demand
 *   (several large providers reject IPv6 senders without PTR outright), so
 *   IPv4 first fails less in practice; both families stay in the list as
 *   fallbacks.
 * - `maxHosts` counts MX host names, not addresses: the first `maxHosts` MX
 *   hosts after sorting are looked up; a host that resolves to nothing is
 *   skipped and not replaced by a later one. Route hosts are not capped (the
 *   operator listed them).
 * - A null-MX record among other MX records (a misconfiguration RFC 7505
 *   forbids) is dropped and the others are used.
 * - An MX exchange that is itself an IP address (RFC-invalid, seen in the
 *   wild) is used as is.
 * - Route host names are resolved through the same resolver; "localhost" is
 *   answered locally (127.0.0.1, ::1) since a DNS server need not know it.
 *
 * `mxHostSet` answers the MX names alone (no address lookups): the scheduler
 * makes a domain's destination key of them (destination/key).
 *
 * What it does not do: connect, cache answers (the resolver's servers do),
 * DANE/MTA-STS, or trim MX records at or below our own preference (RFC 5321
 * §5.1 — left to the caller, which knows our host names).
 */
import { Resolver } from 'node:dns/promises';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { RouteConfig } from '../config/schema.js';
import { mxTtlQuery } from './mx-ttl.js';
import { normalizeDomain, routeFor, routeKey, type Route } from './route.js';

export interface NextHop {
  /** The MX or route host name (the address itself for a literal; "localhost" for a Unix socket). */
  host: string;
  /** A Unix socket path (an LMTP route's `socket`): connect there; address/port/family are placeholders. */
  socket?: string;
  address: string;
  port: number;
  family: 4 | 6;
  /** MX preference; for route hosts, their position in the list. */
  preference: number;
}

export type Resolution =
  | { kind: 'hops'; hops: NextHop[]; /** destination key when routed */ route?: string; routeConfig?: Route }
  | { kind: 'failed'; code: 550 | 556; enhanced: '5.1.10' | '5.1.2'; text: string }
  | { kind: 'deferred'; code: 451; enhanced: '4.4.3' | '4.4.4'; text: string };

export interface ResolveOptions {
  /** Remote SMTP port for MX and literal deliveries (routes carry their own). */
  port: number;
  /** Most MX hosts looked up and returned. */
  maxHosts: number;
  routes: Readonly<Record<string, RouteConfig>>;
}

/** A domain's MX host names (the destination key's input): the MX exchanges, or the domain itself (implicit MX), or unknown. */
export type MxHostSet =
  | { readonly kind: 'hosts'; readonly hosts: readonly string[]; /** The MX records' TTL in seconds, when known (delivery/mx-ttl). */ readonly ttlSeconds?: number }
  /** NXDOMAIN, null MX, a DNS error: no host set — the domain stays its own destination for now. */
  | { readonly kind: 'none'; readonly why: 'nxdomain' | 'null-mx' | 'temporary' };

export interface MxResolver {
  resolveDestination(domain: string, opts: ResolveOptions): Promise<Resolution>;
  /** The MX host set of a domain, without address lookups (the destination key is made of names). */
  mxHostSet?(domain: string): Promise<MxHostSet>;
}

/** The three queries this module makes; node's Resolver has this shape, and tests may pass fakes. */
export interface DnsLookup {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  /** The MX records' TTL in seconds (node's resolveMx has none); absent or undefined → unknown. */
  mxTtl?(name: string): Promise<number | undefined>;
}

export interface CreateResolverOptions {
  /** "127.0.0.1:5353", "[::1]:5353", "192.0.2.53"; empty → the system resolvers. */
  servers: string[];
  timeoutMs: number;
  /** Attempts per query per server (c-ares "tries"); default 2. */
  tries?: number;
  /** Random in [0, 1) for shuffling equal MX preferences; injected by tests. */
  random?: () => number;
}

export function createResolver(opts: CreateResolverOptions): MxResolver {
  const r = new Resolver({ timeout: opts.timeoutMs, tries: opts.tries ?? 2 });
  if (opts.servers.length > 0) r.setServers(opts.servers);
  const mxTtl = mxTtlQuery(opts.servers, opts.timeoutMs);
  const lookup: DnsLookup = {
    resolveMx: (n) => r.resolveMx(n), resolve4: (n) => r.resolve4(n), resolve6: (n) => r.resolve6(n), mxTtl,
  };
  return resolverFromLookup(lookup, opts.random);
}

/** How a DNS error is read: only NXDOMAIN and NODATA are answers; everything else is "try later". */
type DnsOutcome = 'nxdomain' | 'nodata' | 'temporary';

export function classifyDnsError(err: unknown): DnsOutcome {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOTFOUND': return 'nxdomain';
    case 'ENODATA': return 'nodata';
    // ESERVFAIL, ETIMEOUT, ECONNREFUSED, EREFUSED, EBADRESP, ECANCELLED … and
    // anything unknown: never bounce mail on a DNS error we cannot read.
    default: return 'temporary';
  }
}

const errCode = (err: unknown): string => String((err as { code?: unknown } | null)?.code ?? err);

const failed = (enhanced: '5.1.10' | '5.1.2', text: string): Resolution =>
  ({ kind: 'failed', code: enhanced === '5.1.10' ? 556 : 550, enhanced, text });
const deferred = (enhanced: '4.4.3' | '4.4.4', text: string): Resolution =>
  ({ kind: 'deferred', code: 451, enhanced, text });

interface HostAddresses {
  outcome: 'ok' | DnsOutcome;
  addresses: { address: string; family: 4 | 6 }[];
  detail?: string;
}

/** Shuffles in place (Fisher–Yates) with the given random source. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** MX records by preference ascending, equal preferences in random order. */
export function orderMx<T extends { priority: number }>(records: readonly T[], random: () => number): T[] {
  const groups = new Map<number, T[]>();
  for (const r of records) {
    const g = groups.get(r.priority);
    if (g) g.push(r); else groups.set(r.priority, [r]);
  }
  return [...groups.keys()].sort((a, b) => a - b).flatMap((p) => shuffle([...groups.get(p)!], random));
}

export function resolverFromLookup(dns: DnsLookup, random: () => number = Math.random): MxResolver {
  async function addressesOf(name: string): Promise<HostAddresses> {
    const ipFamily = isIP(name);
    if (ipFamily === 4 || ipFamily === 6) return { outcome: 'ok', addresses: [{ address: name, family: ipFamily }] };
    if (name === 'localhost') {
      return { outcome: 'ok', addresses: [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }] };
    }
    const [v4, v6] = await Promise.allSettled([dns.resolve4(name), dns.resolve6(name)]);
    const addresses = [
      ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 as const })) : []),
      ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 as const })) : []),
    ];
    if (addresses.length > 0) return { outcome: 'ok', addresses };
    const outcomes = [v4, v6].map((s) => (s.status === 'rejected' ? classifyDnsError(s.reason) : 'nodata'));
    const rejected = [v4, v6].find((s): s is PromiseRejectedResult => s.status === 'rejected');
    const detail = rejected ? errCode(rejected.reason) : 'no address records';
    if (outcomes.includes('temporary')) return { outcome: 'temporary', addresses, detail };
    if (outcomes.every((o) => o === 'nxdomain')) return { outcome: 'nxdomain', addresses, detail };
    return { outcome: 'nodata', addresses, detail };
  }

  const hopsOf = (host: string, a: HostAddresses, port: number, preference: number): NextHop[] =>
    a.addresses.map(({ address, family }) => ({ host, address, port, family, preference }));

  async function viaRoute(route: Route): Promise<Resolution> {
    if (route.socket !== undefined) {
      return { kind: 'hops', hops: [{ host: 'localhost', socket: route.socket, address: route.socket, port: 0, family: 4, preference: 0 }], route: routeKey(route), routeConfig: route };
    }
    const looked = await Promise.all(route.hosts.map((h) => addressesOf(h.host)));
    const hops = route.hosts.flatMap((h, i) => hopsOf(h.host, looked[i]!, h.port, i));
    if (hops.length === 0) {
      // A route is the operator's promise that mail goes there: never bounce on it.
      return deferred('4.4.4', `No address for route hosts: ${route.hosts.map((h) => h.host).join(', ')}`);
    }
    return { kind: 'hops', hops, route: routeKey(route), routeConfig: route };
  }

  function viaLiteral(literal: string, port: number): Resolution {
    const inner = literal.slice(1, -1);
    const v6 = /^ipv6:/i.exec(inner) ? inner.slice(5) : undefined;
    if (v6 !== undefined ? isIPv6(v6) : isIPv4(inner)) {
      const address = v6 ?? inner;
      return { kind: 'hops', hops: [{ host: address, address, port, family: v6 !== undefined ? 6 : 4, preference: 0 }] };
    }
    return failed('5.1.2', `Bad destination address literal: ${literal}`);
  }

  async function implicitMx(domain: string, port: number): Promise<Resolution> {
    const a = await addressesOf(domain);
    switch (a.outcome) {
      case 'ok': return { kind: 'hops', hops: hopsOf(domain, a, port, 0) };
      case 'temporary': return deferred('4.4.3', `DNS temporary failure: A/AAAA ${domain} ${a.detail}`);
      case 'nxdomain':
      case 'nodata': return failed('5.1.2', `Domain not found: ${domain} has no MX and no address`);
    }
  }

  async function viaMx(domain: string, opts: ResolveOptions): Promise<Resolution> {
    let records: { exchange: string; priority: number }[];
    try {
      records = await dns.resolveMx(domain);
    } catch (err) {
      switch (classifyDnsError(err)) {
        case 'nxdomain': return failed('5.1.2', `Domain not found: ${domain}`);
        case 'nodata': return implicitMx(domain, opts.port);
        case 'temporary': return deferred('4.4.3', `DNS temporary failure: MX ${domain} ${errCode(err)}`);
      }
    }
    const isNull = (r: { exchange: string }) => r.exchange === '' || r.exchange === '.';
    if (records.length === 1 && isNull(records[0]!) && records[0]!.priority === 0) {
      return failed('5.1.10', `Recipient address has null MX: ${domain}`);
    }
    const usable = records.filter((r) => !isNull(r));
    if (usable.length === 0) return implicitMx(domain, opts.port);

    const chosen = orderMx(usable, random).slice(0, Math.max(1, opts.maxHosts));
    const looked = await Promise.all(chosen.map((r) => addressesOf(normalizeDomain(r.exchange))));
    const hops = chosen.flatMap((r, i) => hopsOf(normalizeDomain(r.exchange), looked[i]!, opts.port, r.priority));
    if (hops.length === 0) {
      const why = chosen.map((r, i) => `${r.exchange} ${looked[i]!.detail ?? ''}`.trim()).join('; ');
      return deferred('4.4.4', `No address for any MX host of ${domain}: ${why}`);
    }
    return { kind: 'hops', hops };
  }

  async function mxHostSet(rawDomain: string): Promise<MxHostSet> {
    const domain = normalizeDomain(rawDomain);
    // Asked beside the MX question: it only says how long the answer holds.
    const ttl = dns.mxTtl ? dns.mxTtl(domain).catch(() => undefined) : Promise.resolve(undefined);
    let records: { exchange: string; priority: number }[];
    try {
      records = await dns.resolveMx(domain);
    } catch (err) {
      switch (classifyDnsError(err)) {
        case 'nxdomain': return { kind: 'none', why: 'nxdomain' };
        case 'nodata': return { kind: 'hosts', hosts: [domain] };
        case 'temporary': return { kind: 'none', why: 'temporary' };
      }
    }
    const usable = records.filter((r) => r.exchange !== '' && r.exchange !== '.');
    if (usable.length === 0) return records.length > 0 ? { kind: 'none', why: 'null-mx' } : { kind: 'hosts', hosts: [domain] };
    const ttlSeconds = await ttl;
    const hosts = usable.map((r) => normalizeDomain(r.exchange));
    return ttlSeconds === undefined ? { kind: 'hosts', hosts } : { kind: 'hosts', hosts, ttlSeconds };
  }

  return {
    mxHostSet,
    async resolveDestination(rawDomain, opts) {
      const domain = normalizeDomain(rawDomain);
      const route = routeFor(domain, opts.routes);
      if (route) return viaRoute(route);
      if (domain.startsWith('[') && domain.endsWith(']')) return viaLiteral(domain, opts.port);
      return viaMx(domain, opts);
    },
  };
}

/**
 * inbound/dnsbl — DNS blocklists (RFC 5782) for the MX listener: is this
 * client IP listed, by which list, with which answer.
 *
 * Pure parts: `dnsblQueryName` (reversed IPv4 octets / IPv6 nibbles under the
 * list's zone) and `actsOn` (does an A answer count, by the list's `codes`;
 * without codes, any 127.0.0.0/8 answer except 127.255.255.0/24, which lists
 * like Spamhaus use for "query refused" / "error" — never a listing).
 *
 * The I/O shell, `DnsblChecker`: asks every configured list in parallel
 * (A records, with their TTL, through an injected lookup), caches each
 * answer per (list, IP) until its TTL runs out (a negative answer for the
 * list's SOA-less NXDOMAIN is cached for a fixed minute), on an injected
 * clock. A DNS failure or timeout is never a listing: it is logged and the
 * client is let through (a dead blocklist must not stop mail).
 *
 * It does not decide who is checked (the session skips [relay] networks and
 * authenticated clients) or what is answered (the session says 554 at RCPT).
 */
import { Resolver } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from 'pino';

export interface DnsblList {
  readonly zone: string;
  /** A answers to act on ("127.0.0.2"); empty → any 127/8 answer but 127.255.255.x. */
  readonly codes: readonly string[];
}

export interface DnsblHit {
  readonly zone: string;
  readonly answer: string;
}

/** "1.2.0.192.zen.example.test" for 192.0.2.1; undefined for what is not an IP. */
export function dnsblQueryName(ip: string, zone: string): string | undefined {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = v4mapped ? v4mapped[1]! : ip;
  const z = zone.replace(/\.$/, '');
  if (isIPv4(addr)) return `${addr.split('.').reverse().join('.')}.${z}`;
  if (!isIPv6(addr)) return undefined;
  // Expand "::" to the full 32 nibbles, then reverse them (RFC 5782 §2.4).
  const [head = '', tail = ''] = addr.split('::') as [string, string?];
  const h = head ? head.split(':') : [];
  const t = addr.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const nibbles = groups.map((g) => g.padStart(4, '0')).join('');
  return `${[...nibbles].reverse().join('.')}.${z}`;
}

/** Whether an A answer from a list means "listed" for that list. */
export function actsOn(list: DnsblList, answer: string): boolean {
  if (list.codes.length > 0) return list.codes.includes(answer);
  return answer.startsWith('127.') && !answer.startsWith('127.255.255.');
}

/** The A lookup this module needs: node's Resolver.resolve4 with { ttl: true } has this shape. */
export type ResolveA = (name: string) => Promise<{ address: string; ttl: number }[]>;

/** How long a "not listed" answer (NXDOMAIN, or no A) is cached. */
const NEGATIVE_TTL_MS = 60_000;
/** The longest any answer is cached, whatever its TTL says. */
const MAX_TTL_MS = 3_600_000;
/** Bound on the cache; the oldest entries go first. */
const MAX_ENTRIES = 50_000;

type Entry = { readonly hit: string | undefined; readonly until: number };

export class DnsblChecker {
  private readonly cache = new Map<string, Entry>();

  constructor(
    private readonly lists: readonly DnsblList[],
    private readonly resolveA: ResolveA,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.lists.length > 0;
  }

  /** The first list (in config order) that lists ip, or undefined. Never rejects. */
  async check(ip: string): Promise<DnsblHit | undefined> {
    const answers = await Promise.all(this.lists.map((l) => this.ask(l, ip)));
    const i = answers.findIndex((a) => a !== undefined);
    return i < 0 ? undefined : { zone: this.lists[i]!.zone, answer: answers[i]! };
  }

  private async ask(list: DnsblList, ip: string): Promise<string | undefined> {
    const name = dnsblQueryName(ip, list.zone);
    if (!name) return undefined;
    const now = this.clock();
    const cached = this.cache.get(name);
    if (cached && cached.until > now) return cached.hit;
    let records: { address: string; ttl: number }[];
    try {
      records = await this.resolveA(name);
    } catch (err) {
      const code = String((err as { code?: unknown } | null)?.code ?? err);
      if (code === 'ENOTFOUND' || code === 'ENODATA') return this.remember(name, undefined, NEGATIVE_TTL_MS);
      // SERVFAIL, timeout, refused …: not a listing, and not cached (ask again next connection).
      this.log.warn({ ip, dnsbl: list.zone, err: code }, 'DNSBL lookup failed; client not treated as listed');
      return undefined;
    }
    const hit = records.find((r) => actsOn(list, r.address));
    const ttlMs = Math.min(MAX_TTL_MS, Math.max(0, Math.min(...records.map((r) => r.ttl))) * 1000);
    return this.remember(name, hit?.address, records.length > 0 ? ttlMs : NEGATIVE_TTL_MS);
  }

  private remember(name: string, hit: string | undefined, ttlMs: number): string | undefined {
    if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.delete(name);
    this.cache.set(name, { hit, until: this.clock() + ttlMs });
    return hit;
  }
}

/** config `inbound.dnsbl` entries: "zone" or { zone, codes }. */
export type DnsblConfig = ReadonlyArray<string | { readonly zone: string; readonly codes: readonly string[] }>;

/** A checker over the configured lists, asking the configured resolvers (`dns.servers`, `dns.timeout`), one try each. */
export function createDnsblChecker(lists: DnsblConfig, dns: { servers: readonly string[]; timeoutMs: number }, log: Logger, clock?: () => number): DnsblChecker {
  const r = new Resolver({ timeout: dns.timeoutMs, tries: 1 });
  if (dns.servers.length > 0) r.setServers([...dns.servers]);
  const normalized = lists.map((l) => (typeof l === 'string' ? { zone: l, codes: [] } : l));
  return new DnsblChecker(normalized, (name) => r.resolve4(name, { ttl: true }), log, clock);
}

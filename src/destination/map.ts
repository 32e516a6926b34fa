/**
 * destination/map — which destination (gate key) the recipients
 * of a queued key go to: a recipient is queued under its domain (or route,
 * or local mailbox), decided at RCPT time without DNS; the scheduler maps a
 * domain to its MX host set (`mx:a.example,b.example`) when it first picks
 * that domain's recipients, and remembers the answer for its MX TTL, at
 * most `delivery.destination_cache_ttl` and at least MIN_TTL_MS (a TTL of 0
 * or 5 s must not turn every pass into a DNS question); when the TTL is
 * unknown, for the cap (see docs/decisions/0004). Domains whose
 * MX sets are equal share one key, so they share one backoff, one probe, one
 * connection cap and one pool of connections.
 *
 * A lookup that says nothing useful (NXDOMAIN, null MX, a DNS error) keeps
 * the domain as its own destination for a short while (NEGATIVE_TTL_MS): the
 * transport's own resolution then bounces or defers as before. Routes,
 * `local:` keys and address literals map to themselves; so does everything
 * with `delivery.destination_by = "domain"`.
 *
 * Concurrent lookups of one domain share one DNS question. Memory: one entry
 * per domain seen within the TTL (expired ones are dropped on the way).
 */
import { isDomainKey, mxDestinationKey } from './key.js';
import type { MxHostSet } from '../delivery/resolve.js';

export interface DestinationMapDeps {
  readonly mxHostSet: ((domain: string) => Promise<MxHostSet>) | undefined;
  readonly clock: () => number;
  /** Read on every lookup, so a reload applies. */
  readonly settings: () => { readonly by: 'mx' | 'domain'; readonly ttlMs: number };
}

/** The shortest time a host set is remembered, whatever its MX TTL. */
export const MIN_TTL_MS = 60_000;

/** How long a host set with the given MX TTL is remembered: min(TTL, cap), at least MIN_TTL_MS (the cap when unknown). */
export function hostSetTtlMs(ttlSeconds: number | undefined, capMs: number): number {
  if (ttlSeconds === undefined) return capMs;
  return Math.min(capMs, Math.max(MIN_TTL_MS, ttlSeconds * 1000));
}

/** How long "no host set known" is remembered (the next lookup may know better). */
export const NEGATIVE_TTL_MS = 60_000;

interface Entry {
  readonly key: string;
  readonly until: number;
}

export class DestinationMap {
  private readonly cache = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly deps: DestinationMapDeps) {}

  /** The gate key of each queued key (one DNS question per domain not known yet, asked together). */
  async keysFor(queued: Iterable<string>): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const wanted = [...new Set(queued)];
    const keys = await Promise.all(wanted.map((q) => this.keyFor(q)));
    wanted.forEach((q, i) => out.set(q, keys[i]!));
    return out;
  }

  async keyFor(queued: string): Promise<string> {
    const { by, ttlMs } = this.deps.settings();
    if (by === 'domain' || !isDomainKey(queued) || !this.deps.mxHostSet) return queued;
    const now = this.deps.clock();
    const hit = this.cache.get(queued);
    if (hit && hit.until > now) return hit.key;
    if (hit) this.cache.delete(queued);
    let p = this.pending.get(queued);
    if (!p) {
      p = this.lookup(queued, ttlMs).finally(() => this.pending.delete(queued));
      this.pending.set(queued, p);
    }
    return p;
  }

  /** Queued keys (domains) known to map to `key` now: the destination's domains. */
  domainsOf(key: string): string[] {
    const now = this.deps.clock();
    return [...this.cache].filter(([, e]) => e.key === key && e.until > now).map(([q]) => q).sort();
  }

  /** Every queued key known to map to a gate key other than itself. */
  known(): Map<string, string> {
    const now = this.deps.clock();
    return new Map([...this.cache].filter(([q, e]) => e.until > now && e.key !== q).map(([q, e]) => [q, e.key]));
  }

  private async lookup(domain: string, ttlMs: number): Promise<string> {
    let set: MxHostSet;
    try {
      set = await this.deps.mxHostSet!(domain);
    } catch {
      set = { kind: 'none', why: 'temporary' };
    }
    const now = this.deps.clock();
    const entry: Entry = set.kind === 'hosts'
      ? { key: mxDestinationKey(set.hosts), until: now + hostSetTtlMs(set.ttlSeconds, ttlMs) }
      : { key: domain, until: now + Math.min(ttlMs, NEGATIVE_TTL_MS) };
    this.cache.set(domain, entry);
    return entry.key;
  }
}

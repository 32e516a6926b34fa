/**
 * inbound/auth-dns — the DNS lookups of inbound verification (SPF, DKIM,
 * DMARC, ARC through mailauth): node:dns `Resolver` on `[dns] servers` with
 * the `[dns] timeout`, behind a small cache, in the shape mailauth takes
 * (`(name, rrtype) → records`, errors carrying node's codes).
 *
 * Cached: answers and "does not exist" (ENOTFOUND/ENODATA) for `ttlMs`;
 * never a temporary failure (timeout, SERVFAIL, refused), so the next message
 * asks again. Bounded: at most `maxEntries`, the oldest dropped first. The
 * TTL is ours, not the record's (node's TXT lookups do not report one); keep
 * it short.
 */
import { Resolver } from 'node:dns/promises';

/**
 * mailauth's resolver type. Its declared answer (`string[][] | string[]`) is narrower than what it
 * is given in practice — MX answers are `{exchange, priority}` objects, as node's resolver returns
 * them and as mailauth's own code expects — so answers are passed through as node gives them.
 */
export type AuthResolver = (name: string, rrtype: string) => Promise<string[][] | string[]>;

export interface AuthDnsOptions {
  readonly servers: readonly string[];
  readonly timeoutMs: number;
  readonly ttlMs?: number;
  readonly maxEntries?: number;
  readonly clock?: () => number;
}

type Entry = { readonly until: number; readonly value?: unknown; readonly error?: Error };

const CACHEABLE_ERRORS = new Set(['ENOTFOUND', 'ENODATA']);

export function createAuthResolver(opts: AuthDnsOptions): AuthResolver {
  const resolver = new Resolver({ timeout: opts.timeoutMs, tries: 1 });
  if (opts.servers.length > 0) resolver.setServers([...opts.servers]);
  const ttl = opts.ttlMs ?? 60_000;
  const max = opts.maxEntries ?? 2_000;
  const clock = opts.clock ?? Date.now;
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Promise<unknown>>();

  const lookup = async (name: string, rrtype: string): Promise<unknown> => {
    switch (rrtype) {
      case 'TXT': return resolver.resolveTxt(name);
      case 'A': return resolver.resolve4(name);
      case 'AAAA': return resolver.resolve6(name);
      case 'MX': return resolver.resolveMx(name);
      case 'PTR': return resolver.resolvePtr(name);
      case 'CNAME': return resolver.resolveCname(name);
      default: return resolver.resolve(name, rrtype);
    }
  };

  const remember = (key: string, entry: Entry): void => {
    cache.delete(key);
    cache.set(key, entry);
    while (cache.size > max) cache.delete(cache.keys().next().value as string);
  };

  const resolve = async (name: string, rrtype: string): Promise<unknown> => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit && hit.until > clock()) {
      if (hit.error) throw hit.error;
      return hit.value;
    }
    // Concurrent sessions asking the same name share one query.
    let pending = inflight.get(key);
    if (!pending) {
      pending = lookup(name, rrtype).then(
        (value) => { remember(key, { until: clock() + ttl, value }); return value; },
        (err: NodeJS.ErrnoException) => {
          if (err.code && CACHEABLE_ERRORS.has(err.code)) remember(key, { until: clock() + ttl, error: err });
          throw err;
        },
      ).finally(() => inflight.delete(key));
      inflight.set(key, pending);
    }
    return pending;
  };
  // See AuthResolver: node's answers as they are.
  return (name, rrtype) => resolve(name, rrtype) as Promise<string[][] | string[]>;
}

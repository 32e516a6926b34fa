/**
 * destination/sources — the source addresses of `[egress]` and the pools that
 * weigh them: which pool a message takes (its route's `pool`, else its
 * tenant's in `egress.tenant_pools`, else `egress.default_pool`, else the
 * first pool), and which of the pool's sources sends it to a destination.
 *
 * The choice is nginx's smooth weighted round robin, kept per (pool,
 * destination): deterministic, and over any run of messages each source's
 * share stays within one message of its weight's (weights 3:1 give a a b a,
 * a a b a, …). A source that cannot send to the destination now (`blocked`:
 * its backoff, a reply rule in force, its rate or its warm-up cap there, as
 * the caller knows them) sits the turn out; when every source of the pool is
 * blocked, the answer is the earliest time one is free again.
 *
 * Without sources configured nothing here applies: no source, the
 * destination keys of before. Local and socket (LMTP) deliveries have no
 * source. The round-robin state is this node's memory (bounded; dropped on a
 * reload that changes `[egress]`); it reads no queue, opens nothing and keeps
 * no politeness state (destination/politeness and the gate do, under the
 * sourced keys of destination/key).
 */
import type { Config } from '../config/schema.js';
import { parseDailyCap } from '../config/units.js';
import { routeFor } from '../delivery/route.js';
import { utcDay, type WarmupCount } from '../queue/warmup.js';

/** One `[[egress.sources]]` entry, as delivery uses it. */
export interface EgressSource {
  readonly name: string;
  /** The local address connections bind to. */
  readonly address: string;
  /** The EHLO name from this source; unset → the configured helo_name or hostname. */
  readonly ehloName?: string;
  /** Messages per UTC day per provider (or destination), day 1 first; empty → no cap. */
  readonly warmup: readonly number[];
}

interface Pool {
  readonly name: string;
  readonly members: readonly { readonly source: string; readonly weight: number }[];
}

interface Compiled {
  readonly from: Config['egress'];
  readonly sources: ReadonlyMap<string, EgressSource>;
  readonly pools: ReadonlyMap<string, Pool>;
  readonly defaultPool: string | undefined;
}

/** Round-robin states remembered at most (one per pool and destination in use); beyond, they start over. */
const MAX_STATES = 100_000;

/** The answer of a choice: a source, or none before `until` (every source of the pool is blocked). */
export type SourceChoice = { readonly source: string } | { readonly until: number };

/**
 * One turn of smooth weighted round robin over `members` (pure but for `current`, the running weights, which it
 * updates): every member not blocked gains its weight, the highest is chosen and gives back the turn's total.
 * Undefined when every member is blocked.
 */
export function smoothWeightedChoice(members: readonly { readonly source: string; readonly weight: number }[], current: Map<string, number>, blocked: (source: string) => boolean): string | undefined {
  let total = 0;
  let best: string | undefined;
  for (const m of members) {
    if (blocked(m.source)) continue;
    const w = (current.get(m.source) ?? 0) + m.weight;
    current.set(m.source, w);
    total += m.weight;
    if (best === undefined || w > current.get(best)!) best = m.source;
  }
  if (best !== undefined) current.set(best, current.get(best)! - total);
  return best;
}

export class SourcePools {
  private compiled: Compiled | undefined;
  private readonly turns = new Map<string, Map<string, number>>();

  /** `config` is read at use time (config/live): a reload's sources and pools apply at once. */
  constructor(private readonly config: () => Config) {}

  private get c(): Compiled {
    const e = this.config().egress;
    if (this.compiled?.from !== e) {
      this.turns.clear();
      this.compiled = {
        from: e,
        sources: new Map(e.sources.map((s) => [s.name, {
          name: s.name, address: s.address, ...(s.ehlo_name !== undefined ? { ehloName: s.ehlo_name } : {}),
          warmup: s.warmup.map((w) => parseDailyCap(w)!),
        }])),
        pools: new Map(e.pools.map((p) => [p.name, { name: p.name, members: p.sources.map((m) => ({ source: m.source, weight: m.weight })) }])),
        defaultPool: e.default_pool ?? e.pools[0]?.name,
      };
    }
    return this.compiled;
  }

  /** Whether any source is configured (else nothing here applies). */
  get enabled(): boolean {
    return this.c.sources.size > 0;
  }

  source(name: string): EgressSource | undefined {
    return this.c.sources.get(name);
  }

  /** Every source configured. */
  sources(): EgressSource[] {
    return [...this.c.sources.values()];
  }

  /**
   * The pool a message to `domain` of `tenant` leaves from: its route's, its tenant's, the default. Undefined:
   * no source applies (none configured, a local or socket destination).
   */
  poolOf(domain: string, tenant: string | undefined, destination: string): string | undefined {
    const c = this.c;
    if (c.sources.size === 0 || destination.startsWith('local:')) return undefined;
    const route = routeFor(domain, this.config().routes);
    if (route?.socket !== undefined) return undefined;
    const cfg = route ? this.config().routes[route.matched] : undefined;
    const routePool = cfg !== undefined && typeof cfg === 'object' && !Array.isArray(cfg) ? cfg.pool : undefined;
    return routePool ?? (tenant !== undefined ? this.config().egress.tenant_pools[tenant] : undefined) ?? c.defaultPool;
  }

  /** The sources of a pool (none for an unknown one). */
  members(pool: string): readonly string[] {
    return this.c.pools.get(pool)?.members.map((m) => m.source) ?? [];
  }

  /**
   * The source of `pool` that sends the next message to `destination`: smooth weighted round robin over the
   * sources `blockedUntil` does not block now (it answers when a source can send there again, or undefined).
   */
  choose(pool: string, destination: string, now: number, blockedUntil: (source: string) => number | undefined): SourceChoice | undefined {
    const p = this.c.pools.get(pool);
    if (!p) return undefined;
    const key = `${pool}\u0000${destination}`;
    let current = this.turns.get(key);
    if (!current) {
      if (this.turns.size >= MAX_STATES) this.turns.clear();
      current = new Map();
      this.turns.set(key, current);
    }
    const until = new Map(p.members.map((m) => [m.source, blockedUntil(m.source)]));
    const chosen = smoothWeightedChoice(p.members, current, (s) => (until.get(s) ?? 0) > now);
    if (chosen !== undefined) return { source: chosen };
    return { until: Math.min(...[...until.values()].map((u) => u ?? now)) };
  }
}

/** What `halcyon destinations` shows of a destination's source: the address, EHLO name and warm-up today. */
export interface SourceView {
  readonly name: string;
  readonly address: string;
  readonly ehloName?: string;
  /** Its warm-up towards this destination's scope today (absent: no schedule). `day` absent: not used yet. */
  readonly warmup?: { readonly scope: string; readonly day?: number; readonly cap?: number; readonly sent: number };
}

/** A source as shown for a destination whose warm-up scope is `scope`, from today's counts (queue/warmup). Pure. */
export function sourceView(source: EgressSource, scope: string, counts: readonly WarmupCount[], now: number): SourceView {
  const mine = counts.filter((c) => c.source === source.name);
  const firstDay = mine[0]?.firstDay;
  const day = firstDay === undefined ? undefined : utcDay(now) - firstDay + 1;
  const cap = day === undefined ? source.warmup[0] : source.warmup[day - 1];
  return {
    name: source.name, address: source.address, ...(source.ehloName !== undefined ? { ehloName: source.ehloName } : {}),
    ...(source.warmup.length > 0 ? {
      warmup: { scope, ...(day !== undefined ? { day } : {}), ...(cap !== undefined ? { cap } : {}), sent: mine.find((c) => c.scope === scope)?.sent ?? 0 },
    } : {}),
  };
}

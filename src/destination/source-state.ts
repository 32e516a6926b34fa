/**
 * destination/source-state — what this node knows of its source addresses
 * ([egress]) at each destination, and the choice it makes with it: which
 * source of a message's pool sends it (`sourceFor`, destination/sources'
 * smooth weighted round robin over the sources not blocked there), when a
 * pool can next send to a destination (`nextChance`), and each source's
 * warm-up (`takeWarmup`: the queue's count, queue/warmup).
 *
 * A sourced key (`mx:…@ip2`, destination/key) is **blocked** until a time
 * when destination/service hears why its source cannot send there: the
 * gate's backoff or a suspend (any node's), a pause by a reply rule, the rate
 * bucket, or the warm-up cap (until the next UTC day); a rule in force on the
 * key (destination/politeness) blocks it too. This memory is node-local and
 * bounded by the keys in use (`prune` drops what ended); the facts behind it
 * are on the gate's rows and in the queue, for every node.
 *
 * It opens no connection and decides no backoff (destination/service).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { DestinationGate } from '../queue/destination-gate.js';
import { nextUtcDay, utcDay, type WarmupCount } from '../queue/warmup.js';
import { sourcedKey, splitSource } from './key.js';
import { SourcePools, sourceView, type EgressSource, type SourceView } from './sources.js';

export interface SourceStateDeps {
  readonly config: () => Config;
  readonly gate: Pick<DestinationGate, 'takeWarmup' | 'warmupCounts'>;
  readonly log: Logger;
  readonly clock: () => number;
  /** A rule in force (suspend, slow_down's pause) on a key, or its provider scope (destination/politeness). */
  readonly suspendedUntil: (key: string) => number | undefined;
  /** The scope a destination's warm-up is counted in: `provider:<name>`, or the destination (destination/providers). */
  readonly scopeOf: (destination: string) => string;
}

/** Which key a batch goes under: the destination, or the destination from a source of its pool; or no source before `until`, and why. */
export type SourcePick = { readonly key: string; readonly pool?: string } | { readonly until: number; readonly pool: string; readonly why: string };

/** What a warm-up take gave: recipients that may go now; with `wait`, the rest waits until then, and why. */
export interface WarmupAnswer {
  readonly granted: number;
  readonly wait?: { readonly until: number; readonly text: string };
}

export class SourceState {
  readonly pools: SourcePools;
  /** Sourced keys that cannot take mail before a time, and why, as this node last heard. */
  private readonly blocked = new Map<string, { readonly until: number; readonly why: string }>();
  /** The last UTC day a warm-up cap was logged per sourced key (one warning per key and day). */
  private readonly warmupLogged = new Map<string, number>();
  /** Each source's first day as the queue answered it (fixed once set): past its schedule, no queue call at all. */
  private readonly firstDay = new Map<string, number>();

  constructor(private readonly deps: SourceStateDeps) {
    this.pools = new SourcePools(deps.config);
  }

  /** When a sourced key can take mail again (undefined: now). */
  private blockedUntil(key: string, now: number): number | undefined {
    const until = Math.max(this.blocked.get(key)?.until ?? 0, this.deps.suspendedUntil(key) ?? 0);
    return until > now ? until : undefined;
  }

  /** Why a sourced key is blocked now (for the log line of mail that waits). */
  private whyBlocked(key: string, now: number): string {
    const b = this.blocked.get(key);
    return b && b.until > now ? b.why : 'a reply rule in force';
  }

  /** A sourced key cannot take mail before `until`, for `why` (kept when later than what is known). Keys without a source: nothing. */
  block(key: string, until: number, why: string): void {
    if (splitSource(key).source !== undefined && until > (this.blocked.get(key)?.until ?? 0)) this.blocked.set(key, { until, why });
  }

  /**
   * The key a message to `domain` (of `tenant`) at `destination` goes under: without sources, the destination;
   * else the destination from the next source of its pool that is not blocked there, or, when every one is,
   * when the first is free again.
   */
  sourceFor(domain: string, tenant: string | undefined, destination: string, now: number): SourcePick {
    const pool = this.pools.poolOf(domain, tenant, destination);
    if (pool === undefined) return { key: destination };
    const c = this.pools.choose(pool, destination, now, (s) => this.blockedUntil(sourcedKey(destination, s), now));
    if (c === undefined) return { key: destination };
    if (!('until' in c)) return { key: sourcedKey(destination, c.source), pool };
    const why = this.pools.members(pool).map((s) => `${s} ${this.whyBlocked(sourcedKey(destination, s), now)}`).join('; ');
    return { until: c.until, pool, why };
  }

  /** When mail of `pool` to the destination of `key` can go again from any of its sources: now, or when the first is free. */
  nextChance(pool: string, key: string, now: number): number {
    const destination = splitSource(key).destination;
    return Math.min(...this.pools.members(pool).map((s) => this.blockedUntil(sourcedKey(destination, s), now) ?? now));
  }

  /** The source a key's connections leave from. */
  sourceOf(key: string): EgressSource | undefined {
    const name = splitSource(key).source;
    return name === undefined ? undefined : this.pools.source(name);
  }

  /**
   * A source's warm-up for a batch of `want` recipients to `key`: how many of them may go today (all, without a
   * schedule or past its end), counted in the queue for every node. Short of `want`: the key is blocked until the
   * next UTC day (logged once a day) and the answer says until when the rest waits, and why.
   */
  async takeWarmup(key: string, want: number, now: number): Promise<WarmupAnswer> {
    const source = this.sourceOf(key);
    if (!source || source.warmup.length === 0) return { granted: want };
    const first = this.firstDay.get(source.name);
    if (first !== undefined && utcDay(now) - first >= source.warmup.length) return { granted: want };
    const destination = splitSource(key).destination;
    const scope = this.deps.scopeOf(destination);
    const t = await this.deps.gate.takeWarmup({ source: source.name, scope, now, caps: source.warmup, want });
    this.firstDay.set(source.name, utcDay(now) - t.day + 1);
    if (t.granted >= want) return { granted: t.granted };
    const until = nextUtcDay(now);
    const text = `source ${source.name} (${source.address}) reached its warm-up cap for ${scope}: day ${t.day}, ${t.cap ?? 0}/day`;
    this.block(key, until, `at its warm-up cap (day ${t.day}, ${t.cap ?? 0}/day to ${scope})`);
    if (this.warmupLogged.get(key) !== utcDay(now)) {
      this.warmupLogged.set(key, utcDay(now));
      this.deps.log.warn({
        event: 'warmup_cap', destination, source: source.name, scope, warmup_day: t.day, cap: t.cap, sent: t.sent, until: new Date(until).toISOString(),
      }, `${text}; its mail there waits for the next UTC day (${new Date(until).toISOString()})`);
    }
    return { granted: t.granted, wait: { until, text } };
  }

  /** The source of each key that has one, with its warm-up today towards the key's scope (`halcyon destinations`). */
  async views(keys: readonly string[]): Promise<Map<string, SourceView>> {
    const sourced = keys.flatMap((k) => {
      const source = this.sourceOf(k);
      return source ? [[k, source] as const] : [];
    });
    const out = new Map<string, SourceView>();
    if (sourced.length === 0) return out;
    const now = this.deps.clock();
    const counts: readonly WarmupCount[] = await this.deps.gate.warmupCounts(utcDay(now));
    for (const [k, source] of sourced) out.set(k, sourceView(source, this.deps.scopeOf(splitSource(k).destination), counts, now));
    return out;
  }

  /** Sourced keys blocked now (for `halcyon destinations`: a source at its cap or paused has no other state to show). */
  known(now: number): string[] {
    return [...this.blocked].filter(([, b]) => b.until > now).map(([k]) => k);
  }

  /** Drops what ended (the scheduler's housekeeping). */
  prune(now: number): void {
    for (const [k, b] of this.blocked) if (b.until <= now) this.blocked.delete(k);
    for (const [k, day] of this.warmupLogged) if (day < utcDay(now)) this.warmupLogged.delete(k);
  }
}

/**
 * destination/politeness — what this scheduler knows about how hard it may
 * push each destination: adaptive concurrency (destination/concurrency), the
 * learned recipient limit (destination/learned-limits) and the reply rules in
 * force (destination/reply-rules). One record per destination key, driven by
 * events the destination service (destination/service) reports; the clock is
 * injected.
 *
 * The record lives in this process's memory; what must hold across nodes —
 * the learned connection ceiling and recipient limit, and the reply rules in
 * force (suspend / set) — is `shared()` onto the DestinationGate's row
 * (`limits`, which the gate enforces: a suspend and a rule's connection cap
 * in `decideGrant`) and `absorb()`ed from it when a slot is granted, so
 * every node and the next start apply it; `view()` shows a row's limits
 * taken in the same way without storing them (a read changes nothing). The
 * adaptive limit below the ceiling stays node-local. Records that say
 * nothing beyond the defaults any more are dropped by `prune` (the
 * scheduler's housekeeping), so memory follows the destinations in use.
 *
 * Provider shaping (destination/providers): a preset lowers the connection
 * cap and sets a paced rate; a rule triggered through a provider's
 * destination is kept on the record of its scope (`provider:<name>`), and so
 * is the adaptive rate (destination/adaptive-rate): every destination of the
 * provider reads both. The scope's record is shared on the gate row of the
 * scope key like any destination's.
 *
 * With source addresses (destination/sources) the keys are sourced
 * (`mx:…@ip2`, scope `provider:google@ip2`): one record per (source,
 * destination), so what one source learned never slows another.
 *
 * It never opens connections, writes the queue or decides backoff (the
 * failure policy and the scheduler's retry do); it logs nothing (the caller
 * logs one line per rule trigger and per learned limit).
 */
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import type { DestinationLimits, LastReply, LearnedRate } from '../queue/model.js';
import { newerRate } from '../queue/destination-gate.js';
import { cutRate, grewRate, paced, perMinute } from './adaptive-rate.js';
import { Shaping, type ProviderMatch } from './providers.js';
import { splitSource } from './key.js';
import { formatReply, matchRule, ruleEffect, triggerRule, type ActiveRule, type ReplyRule } from './reply-rules.js';
import {
  concurrencyLimit, initialConcurrency, onSessionSuccess, onSessionTimeout, onTooManyConnections, type ConcurrencyState,
} from './concurrency.js';
import { learnRecipientLimit, recipientLimit, type LearnedRecipientLimit } from './learned-limits.js';

export interface PolitenessRecord {
  readonly concurrency: ConcurrencyState;
  readonly recipients?: LearnedRecipientLimit;
  readonly rules: readonly ActiveRule[];
  /** The adaptive rate (on a scope's record: the provider's, or the destination's own). */
  readonly rate?: LearnedRate;
}

/** What `halcyon destinations` shows of a destination's politeness. */
export interface PolitenessView {
  /** Connections allowed now (adaptive, under the cap and any rule). */
  readonly connectionLimit: number;
  readonly connectionCap: number;
  /** A learned connection ceiling from a "too many connections" reply. */
  readonly learnedConnections?: { readonly max: number; readonly until: number; readonly reply: string };
  /** Recipients per transaction now (learned limit under the configured one). */
  readonly recipientLimit: number;
  readonly learnedRecipients?: { readonly max: number; readonly until: number; readonly reply: string };
  /** Rules in force: the destination's own and its provider's (scope). */
  readonly rules: readonly ActiveRule[];
  /** The provider preset it gets, and why. */
  readonly provider?: { readonly name: string; readonly why: string; readonly origin: string };
  /** Messages per minute now (adaptive, preset or configured); undefined: no rate. */
  readonly ratePerMinute?: number;
  readonly learnedRate?: LearnedRate;
  readonly maxMessagesPerConnection?: number;
}

/**
 * The times of a scope's deliveries in the last minute (at most 10,000), oldest first: each delivery appends its time
 * and drops the expired ones from the front, so a delivery costs O(1) rather than a pass over the whole minute.
 */
class LastMinute {
  private times: number[] = [];
  private head = 0;

  add(now: number): void {
    if (this.count(now) < 10_000) this.times.push(now);
  }

  count(now: number): number {
    const t = this.times;
    while (this.head < t.length && t[this.head]! <= now - 60_000) this.head++;
    if (this.head > 1024 && this.head * 2 > t.length) {
      this.times = t.slice(this.head);
      this.head = 0;
    }
    return this.times.length - this.head;
  }
}

export class Politeness {
  private readonly records = new Map<string, PolitenessRecord>();
  /** Deliveries per scope in the last minute (what a first cut starts from when no rate was set). Node-local. */
  private readonly recent = new Map<string, LastMinute>();
  readonly shaping: Shaping;

  /** `config` is read at use time (config/live): a reload's new rules, caps and presets apply at once. */
  constructor(private readonly config: () => Config, private readonly clock: () => number, shaping?: Shaping) {
    this.shaping = shaping ?? new Shaping(config);
  }

  private get d(): Config['delivery'] {
    return this.config().delivery;
  }

  private get ttlMs(): number {
    return durationMs(this.d.learned_limit_ttl);
  }

  /** The configured cap, lowered by the destination's preset. */
  private cap(key: string): number {
    return Math.min(this.d.max_connections_per_destination, this.shaping.of(key).maxConnections ?? Infinity);
  }

  private record(key: string): PolitenessRecord {
    return this.records.get(key) ?? { concurrency: initialConcurrency(this.d.initial_connections_per_destination, this.cap(key)), rules: [] };
  }

  private put(key: string, r: PolitenessRecord): void {
    this.records.set(key, r);
  }

  /** The rules in force for a destination: its own record's and its provider scope's. */
  private rulesOf(key: string): readonly ActiveRule[] {
    const scope = this.shaping.scopeOf(key);
    const own = this.records.get(key)?.rules ?? [];
    return scope === key ? own : [...own, ...(this.records.get(scope)?.rules ?? [])];
  }

  /** Connections the destination may have now (≥ 1). */
  connectionLimit(key: string): number {
    const now = this.clock();
    const cap = Math.min(this.cap(key), ruleEffect(this.rulesOf(key), now).maxConnections ?? Infinity);
    return concurrencyLimit(this.record(key).concurrency, cap, now);
  }

  /** Recipients one transaction to the destination may carry now. */
  recipientLimit(key: string): number {
    return recipientLimit(this.records.get(key)?.recipients, this.d.max_recipients_per_transaction, this.clock());
  }

  /** A suspend (or a slow_down's pause) in force, the destination's own or its provider's: no connection before this time. */
  suspendedUntil(key: string): number | undefined {
    return ruleEffect(this.rulesOf(key), this.clock()).suspendedUntil;
  }

  /**
   * The destination's message rate now, shared by its scope (`count` per `perMs`): the slowest of a set rule's,
   * the adaptive rate and the preset's (both paced one at a time); undefined: none (delivery.destination_rate
   * applies, the caller's).
   */
  rate(key: string): { count: number; perMs: number } | undefined {
    const now = this.clock();
    const learned = this.records.get(this.shaping.scopeOf(key))?.rate;
    const preset = this.shaping.of(key).rate;
    const candidates = [
      ruleEffect(this.rulesOf(key), now).rate,
      learned && learned.until > now ? paced(learned.perMinute) : undefined,
      preset ? paced(perMinute(preset)) : undefined,
    ].filter((r): r is { count: number; perMs: number } => r !== undefined);
    if (candidates.length === 0) return undefined;
    return candidates.reduce((a, b) => (perMinute(b) < perMinute(a) ? b : a));
  }

  /** The ceiling the adaptive rate grows back to: the preset's rate, else the configured one. */
  private ceiling(key: string, configured?: { readonly count: number; readonly perMs: number }): number | undefined {
    const r = this.shaping.of(key).rate ?? configured;
    return r ? perMinute(r) : undefined;
  }

  /** A session worked: positive feedback. */
  sessionWorked(key: string): void {
    const r = this.record(key);
    this.put(key, { ...r, concurrency: onSessionSuccess(r.concurrency, this.cap(key), this.clock()) });
  }

  /**
   * A batch went through (a delivery): the adaptive rate of its scope grows (AIMD's additive increase).
   * Returns true when it crossed a whole message per minute (worth sharing with the other nodes).
   */
  delivered(key: string, configured?: { readonly count: number; readonly perMs: number }): boolean {
    const now = this.clock();
    const scope = this.shaping.scopeOf(key);
    let seen = this.recent.get(scope);
    if (!seen) this.recent.set(scope, (seen = new LastMinute()));
    seen.add(now);
    const r = this.records.get(scope);
    if (!r?.rate) return false;
    const grown = grewRate(r.rate, this.config().shaping.rate_increase, this.ceiling(key, configured), now);
    this.put(scope, { ...r, ...(grown ? { rate: grown } : {}) });
    return grown !== undefined && Math.floor(grown.perMinute) > Math.floor(r.rate.perMinute);
  }

  /**
   * A slow_down rule triggered (AIMD's multiplicative decrease): the scope's rate becomes `factor` × the rate in
   * force (what this node delivered in the last minute when none is set). Returns the new rate per minute.
   */
  private slowDown(key: string, factor: number, reply: LastReply, configured?: { readonly count: number; readonly perMs: number }): number {
    const now = this.clock();
    const scope = this.shaping.scopeOf(key);
    const inForce = this.rate(key) ?? configured;
    const current = inForce ? perMinute(inForce) : this.recent.get(scope)?.count(now) ?? 0;
    const r = this.record(scope);
    const rate = cutRate(current, factor, formatReply(reply), now, this.ttlMs);
    this.put(scope, { ...r, rate });
    return rate.perMinute;
  }

  /** The remote asked for fewer connections while `others` of ours were working (≥ 1). */
  tooManyConnections(key: string, others: number, reply: LastReply): number {
    const r = this.record(key);
    const concurrency = onTooManyConnections(r.concurrency, others, this.clock(), this.ttlMs, formatReply(reply));
    this.put(key, { ...r, concurrency });
    return this.connectionLimit(key);
  }

  /** A connect or greeting timeout while others were working. */
  sessionTimedOut(key: string): number {
    const r = this.record(key);
    this.put(key, { ...r, concurrency: onSessionTimeout(r.concurrency) });
    return this.connectionLimit(key);
  }

  /** A recipient-limit reply after `accepted` recipients: returns the limit now in force if it changed. */
  limitReached(key: string, accepted: number, reply: LastReply): number | undefined {
    const r = this.record(key);
    const before = this.recipientLimit(key);
    const learned = learnRecipientLimit(r.recipients, accepted, formatReply(reply), this.clock(), this.ttlMs);
    this.put(key, { ...r, ...(learned ? { recipients: learned } : {}) });
    const after = this.recipientLimit(key);
    return after !== before ? after : undefined;
  }

  /** The rule a reply from the destination would trigger (nothing changes). */
  ruleOf(key: string, reply: Pick<LastReply, 'code' | 'enhanced' | 'text'>): ReplyRule | undefined {
    const rules = this.shaping.rules();
    return rules.length === 0 ? undefined : matchRule(rules, splitSource(key).destination, reply, this.shaping.of(key).provider?.preset.name);
  }

  /**
   * A reply from the destination: the rule it triggers (now in force), if any, and where it is kept — the
   * provider's scope for a provider's rule, else the destination. A slow_down also cuts the scope's rate
   * (`rate`: the new messages per minute).
   */
  onReply(key: string, reply: LastReply, configured?: { readonly count: number; readonly perMs: number }): { rule: ReplyRule; scope: string; rate?: number } | undefined {
    const rule = this.ruleOf(key, reply);
    if (!rule) return undefined;
    const scope = rule.provider !== undefined ? this.shaping.scopeOf(key) : key;
    const rate = rule.action === 'slow_down' ? this.slowDown(key, rule.factor, reply, configured) : undefined;
    const r = this.record(scope);
    this.put(scope, { ...r, rules: triggerRule(r.rules, rule, reply, this.clock()) });
    return rate !== undefined ? { rule, scope, rate } : { rule, scope };
  }

  /**
   * Whether the destination (or its provider) is paused by a rule after a batch, and until when: the rule the
   * batch's failure triggered (record, before) pauses it (suspend, slow_down — whose pause may be 0 s: until now),
   * or, without a failure, a pause is in force (a recipient's own reply triggered it). `reply`: what the batches
   * waiting here are told when there was no failure.
   */
  pauseAfter(key: string, failure: LastReply | undefined): { until: number; reply: LastReply } | undefined {
    const now = this.clock();
    const until = this.suspendedUntil(key);
    const inForce = until !== undefined && until > now ? until : undefined;
    if (failure) {
      const rule = this.ruleOf(key, failure);
      if (!rule || (rule.action !== 'suspend' && rule.action !== 'slow_down')) return undefined;
      const at = inForce ?? (rule.action === 'slow_down' ? now : undefined);
      return at !== undefined ? { until: at, reply: failure } : undefined;
    }
    if (inForce === undefined) return undefined;
    const rule = this.rulesOf(key).find((a) => a.until === inForce);
    return { until: inForce, reply: { code: 451, enhanced: '4.7.0', text: rule ? rule.reply : 'a reply rule', ours: true } };
  }

  /** The provider preset a destination matches. */
  providerOf(key: string): ProviderMatch | undefined {
    return this.shaping.of(key).provider;
  }

  /** What other nodes should know (the gate row's `limits`): the learned ceilings in force, or undefined. */
  shared(key: string): DestinationLimits | undefined {
    const now = this.clock();
    const r = this.records.get(key);
    if (!r) return undefined;
    const c = r.concurrency;
    const out: { -readonly [K in keyof DestinationLimits]: DestinationLimits[K] } = {};
    if (c.ceiling !== undefined && (c.ceilingUntil ?? 0) > now) Object.assign(out, { maxConnections: c.ceiling, maxConnectionsUntil: c.ceilingUntil, connectionsReply: c.ceilingReply });
    if (r.recipients && r.recipients.until > now) Object.assign(out, { maxRecipients: r.recipients.maxRecipients, maxRecipientsUntil: r.recipients.until, recipientsReply: r.recipients.reply });
    const rules = r.rules.filter((a) => a.until > now);
    if (rules.length > 0) Object.assign(out, { rules });
    if (r.rate && r.rate.until > now) Object.assign(out, { rate: r.rate });
    return Object.keys(out).length > 0 ? out : undefined;
  }

  /** What another node learned (the gate row's `limits`): taken where it is stricter than what is known here. */
  absorb(key: string, limits: DestinationLimits | undefined): void {
    const r = this.record(key);
    const after = absorbLimits(r, limits, this.clock());
    if (after !== r) this.put(key, after);
  }

  /**
   * What `halcyon destinations` shows: this node's record with the gate row's `limits` (`shared`: what any
   * node learned, or a rule in force) taken in as `absorb` would — computed, not stored: a read changes nothing.
   */
  view(key: string, shared?: DestinationLimits, scopeShared?: DestinationLimits, configured?: { readonly count: number; readonly perMs: number }): PolitenessView {
    const now = this.clock();
    const r = absorbLimits(this.record(key), shared, now);
    const scope = this.shaping.scopeOf(key);
    const s = scope === key ? r : absorbLimits(this.record(scope), scopeShared, now);
    const c = r.concurrency;
    const rules = [...r.rules, ...(scope === key ? [] : s.rules)].filter((a) => a.until > now);
    const cap = Math.min(this.cap(key), ruleEffect(rules, now).maxConnections ?? Infinity);
    const shaping = this.shaping.of(key);
    const learned = s.rate && s.rate.until > now ? s.rate : undefined;
    const rates = [ruleEffect(rules, now).rate, learned ? paced(learned.perMinute) : undefined, shaping.rate ?? configured]
      .filter((x): x is { count: number; perMs: number } => x !== undefined).map(perMinute);
    const p = shaping.provider;
    const perMessages = Math.min(this.d.max_messages_per_connection, shaping.maxMessagesPerConnection ?? Infinity);
    return {
      connectionLimit: concurrencyLimit(c, cap, now),
      connectionCap: this.cap(key),
      ...(c.ceiling !== undefined && (c.ceilingUntil ?? 0) > now ? { learnedConnections: { max: c.ceiling, until: c.ceilingUntil!, reply: c.ceilingReply ?? '' } } : {}),
      recipientLimit: recipientLimit(r.recipients, this.d.max_recipients_per_transaction, now),
      ...(r.recipients && r.recipients.until > now ? { learnedRecipients: { max: r.recipients.maxRecipients, until: r.recipients.until, reply: r.recipients.reply } } : {}),
      rules,
      ...(p ? { provider: { name: p.preset.name, why: p.why, origin: p.preset.origin } } : {}),
      ...(rates.length > 0 ? { ratePerMinute: Math.min(...rates) } : {}),
      ...(learned ? { learnedRate: learned } : {}),
      maxMessagesPerConnection: perMessages,
    };
  }

  /** Destinations with something learned or a rule in force (a read: nothing is dropped here, see `prune`). */
  keys(): string[] {
    const now = this.clock();
    return [...this.records].filter(([k, r]) => this.live(k, r, now)).map(([k]) => k);
  }

  /** Drops the records that say nothing beyond the defaults any more (the scheduler's housekeeping). */
  prune(): void {
    const now = this.clock();
    for (const [k, r] of this.records) if (!this.live(k, r, now)) this.records.delete(k);
    for (const [k, seen] of this.recent) if (seen.count(now) === 0) this.recent.delete(k);
  }

  private live(key: string, r: PolitenessRecord, now: number): boolean {
    return r.rules.some((a) => a.until > now) || (r.recipients?.until ?? 0) > now || (r.concurrency.ceilingUntil ?? 0) > now
      || (r.rate?.until ?? 0) > now
      || r.concurrency.limit !== initialConcurrency(this.d.initial_connections_per_destination, this.cap(key)).limit;
  }
}

/**
 * A record with another node's `limits` taken in where they are stricter (a lower recipient limit or
 * connection ceiling still in force; each rule as the trigger that holds longer). Pure: the same record
 * when nothing changes.
 */
export function absorbLimits(record: PolitenessRecord, limits: DestinationLimits | undefined, now: number): PolitenessRecord {
  if (!limits) return record;
  let r = record;
  const { maxRecipients: k, maxRecipientsUntil: kUntil, maxConnections: m, maxConnectionsUntil: mUntil } = limits;
  if (k !== undefined && kUntil !== undefined && kUntil > now && !(r.recipients && r.recipients.until > now && r.recipients.maxRecipients <= k)) {
    r = { ...r, recipients: { maxRecipients: k, until: kUntil, learnedAt: now, reply: limits.recipientsReply ?? '' } };
  }
  const c = r.concurrency;
  const ceilingHere = c.ceiling !== undefined && (c.ceilingUntil ?? 0) > now ? c.ceiling : Infinity;
  if (m !== undefined && mUntil !== undefined && mUntil > now && m < ceilingHere) {
    r = { ...r, concurrency: { limit: Math.min(c.limit, m), credit: 0, ceiling: m, ceilingUntil: mUntil, ceilingReply: limits.connectionsReply ?? '' } };
  }
  // Rules in force elsewhere: each rule (by its index) as it is here or there, whichever holds longer.
  const theirs = (limits.rules ?? []).filter((a) => a.until > now);
  if (theirs.length > 0) {
    const byIndex = new Map(r.rules.filter((a) => a.until > now).map((a) => [a.index, a]));
    let changed = false;
    for (const a of theirs) {
      const mine = byIndex.get(a.index);
      if (!mine || mine.until < a.until) { byIndex.set(a.index, a); changed = true; }
    }
    if (changed) r = { ...r, rules: [...byIndex.values()].sort((x, y) => x.index - y.index) };
  }
  // The adaptive rate: the one descending from the later cut; from the same cut, the higher (queue/destination-gate).
  const rate = newerRate(r.rate, limits.rate, now);
  if (rate !== r.rate && rate !== undefined) r = { ...r, rate };
  return r;
}

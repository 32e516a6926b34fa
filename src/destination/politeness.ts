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
 * It never opens connections, writes the queue or decides backoff (the
 * failure policy and the scheduler's retry do); it logs nothing (the caller
 * logs one line per rule trigger and per learned limit).
 */
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import type { DestinationLimits, LastReply } from '../queue/model.js';
import { compileRules, formatReply, matchRule, ruleEffect, triggerRule, type ActiveRule, type ReplyRule } from './reply-rules.js';
import {
  concurrencyLimit, initialConcurrency, onSessionSuccess, onSessionTimeout, onTooManyConnections, type ConcurrencyState,
} from './concurrency.js';
import { learnRecipientLimit, recipientLimit, type LearnedRecipientLimit } from './learned-limits.js';

export interface PolitenessRecord {
  readonly concurrency: ConcurrencyState;
  readonly recipients?: LearnedRecipientLimit;
  readonly rules: readonly ActiveRule[];
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
  readonly rules: readonly ActiveRule[];
}

export class Politeness {
  private readonly records = new Map<string, PolitenessRecord>();
  private compiled: { from: Config['delivery']['rules']; rules: ReplyRule[] } | undefined;

  /** `config` is read at use time (config/live): a reload's new rules and caps apply at once. */
  constructor(private readonly config: () => Config, private readonly clock: () => number) {}

  private get d(): Config['delivery'] {
    return this.config().delivery;
  }

  private get rules(): ReplyRule[] {
    // Recompiled when a reload hands in a new rules array.
    if (!this.compiled || this.compiled.from !== this.d.rules) this.compiled = { from: this.d.rules, rules: compileRules(this.d.rules) };
    return this.compiled.rules;
  }

  private get ttlMs(): number {
    return durationMs(this.d.learned_limit_ttl);
  }

  private record(key: string): PolitenessRecord {
    return this.records.get(key) ?? { concurrency: initialConcurrency(this.d.initial_connections_per_destination, this.d.max_connections_per_destination), rules: [] };
  }

  private put(key: string, r: PolitenessRecord): void {
    this.records.set(key, r);
  }

  /** Connections the destination may have now (≥ 1). */
  connectionLimit(key: string): number {
    const now = this.clock();
    const r = this.record(key);
    const cap = Math.min(this.d.max_connections_per_destination, ruleEffect(r.rules, now).maxConnections ?? Infinity);
    return concurrencyLimit(r.concurrency, cap, now);
  }

  /** Recipients one transaction to the destination may carry now. */
  recipientLimit(key: string): number {
    return recipientLimit(this.records.get(key)?.recipients, this.d.max_recipients_per_transaction, this.clock());
  }

  /** A suspend rule in force: no connection before this time. */
  suspendedUntil(key: string): number | undefined {
    const r = this.records.get(key);
    return r ? ruleEffect(r.rules, this.clock()).suspendedUntil : undefined;
  }

  /** A rate set by a rule in force (it replaces delivery.destination_rate while active). */
  rate(key: string): { count: number; perMs: number } | undefined {
    const r = this.records.get(key);
    return r ? ruleEffect(r.rules, this.clock()).rate : undefined;
  }

  /** A session worked: positive feedback. */
  sessionWorked(key: string): void {
    const r = this.record(key);
    this.put(key, { ...r, concurrency: onSessionSuccess(r.concurrency, this.d.max_connections_per_destination, this.clock()) });
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

  /** A reply from the destination: the rule it triggers (now in force), if any. */
  onReply(key: string, reply: LastReply): ReplyRule | undefined {
    const rules = this.rules;
    if (rules.length === 0) return undefined;
    const rule = matchRule(rules, key, reply);
    if (!rule) return undefined;
    const r = this.record(key);
    this.put(key, { ...r, rules: triggerRule(r.rules, rule, reply, this.clock()) });
    return rule;
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
  view(key: string, shared?: DestinationLimits): PolitenessView {
    const now = this.clock();
    const r = absorbLimits(this.record(key), shared, now);
    const c = r.concurrency;
    const cap = Math.min(this.d.max_connections_per_destination, ruleEffect(r.rules, now).maxConnections ?? Infinity);
    return {
      connectionLimit: concurrencyLimit(c, cap, now),
      connectionCap: this.d.max_connections_per_destination,
      ...(c.ceiling !== undefined && (c.ceilingUntil ?? 0) > now ? { learnedConnections: { max: c.ceiling, until: c.ceilingUntil!, reply: c.ceilingReply ?? '' } } : {}),
      recipientLimit: recipientLimit(r.recipients, this.d.max_recipients_per_transaction, now),
      ...(r.recipients && r.recipients.until > now ? { learnedRecipients: { max: r.recipients.maxRecipients, until: r.recipients.until, reply: r.recipients.reply } } : {}),
      rules: r.rules.filter((a) => a.until > now),
    };
  }

  /** Destinations with something learned or a rule in force (a read: nothing is dropped here, see `prune`). */
  keys(): string[] {
    const now = this.clock();
    return [...this.records].filter(([, r]) => this.live(r, now)).map(([k]) => k);
  }

  /** Drops the records that say nothing beyond the defaults any more (the scheduler's housekeeping). */
  prune(): void {
    const now = this.clock();
    for (const [k, r] of this.records) if (!this.live(r, now)) this.records.delete(k);
  }

  private live(r: PolitenessRecord, now: number): boolean {
    return r.rules.some((a) => a.until > now) || (r.recipients?.until ?? 0) > now || (r.concurrency.ceilingUntil ?? 0) > now
      || r.concurrency.limit !== initialConcurrency(this.d.initial_connections_per_destination, this.d.max_connections_per_destination).limit;
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
  return r;
}

/**
 * destination/reply-rules — `[[delivery.rules]]` as pure functions: which rule
 * (if any) a destination's reply triggers, and what the rules in force say
 * about that destination now (suspended until, connection cap, rate).
 * KumoMTA's traffic-shaping automation is the reference.
 *
 * A rule matches when its `destination` glob matches the destination key
 * (a provider's rule, data/providers.toml: when the destination is that
 * provider's — destination/providers),
 * its `code` (if set) equals the reply's code, and its `match` regex
 * (case-insensitive) finds the reply text, the enhanced code prefixed
 * ("4.7.28 Our system has detected…"), so a rule can match either. The
 * first matching rule in config order wins. A trigger (re)starts the rule's
 * `for` period from now; one log line per trigger is the caller's.
 *
 * Actions:
 * - `suspend` — no connection to the destination until `for` has passed
 *   (waiting recipients spend no retry steps);
 * - `set` — `max_connections` and/or `rate` apply while the rule is active
 *   (they only ever lower the configured values);
 * - `slow_down` — the adaptive message rate is cut by `factor`
 *   (destination/adaptive-rate) and the destination pauses for `for` (kept
 *   in force like a suspend); its recipients wait for the rate, not a backoff;
 * - `bounce` — the recipient whose reply matched fails at once (one DSN),
 *   instead of being retried. Only ever applied to a recipient's own
 *   temporary result; never turns a delivered recipient into anything;
 * - `suspend_tenant` — the tenant whose mail drew the reply sends nothing to
 *   the destination (a provider's rule: the provider) for `for`; the others
 *   go on. Kept on a hold row of the tenant's (destination/tenants), never
 *   among the destination's rules in force.
 *
 * No clock (callers pass `now`), no state, no I/O.
 */
import type { ProviderRuleConfig, ReplyRuleConfig } from '../config/schema.js';
import { durationMs, parseRate } from '../config/units.js';
import type { DestinationRule, LastReply } from '../queue/model.js';

export interface ReplyRule {
  /** Position in `delivery.rules` (0-based): the rule's name in logs and `halcyon destinations`. */
  readonly index: number;
  readonly match: RegExp;
  readonly code?: number;
  readonly action: 'suspend' | 'set' | 'bounce' | 'slow_down' | 'suspend_tenant';
  readonly forMs: number;
  /** slow_down: the adaptive rate is multiplied by this. */
  readonly factor: number;
  /** A provider's rule: it matches that provider's destinations only (not `destination`), and acts on the whole provider. */
  readonly provider?: string;
  /** Where the provider documents the reply. */
  readonly source?: string;
  readonly maxConnections?: number;
  readonly rate?: { readonly count: number; readonly perMs: number };
  /** The glob as written, and compiled. */
  readonly destination: string;
  readonly destinationRe: RegExp;
  /** The rule as configured, for display. */
  readonly text: string;
}

/** `*` any run of characters, `?` one; everything else literal; whole key, case-insensitive. */
export function globToRegExp(glob: string): RegExp {
  const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 'i');
}

function compileRule(r: ReplyRuleConfig | (ProviderRuleConfig & { destination?: undefined }), index: number, provider?: string): ReplyRule {
  const rate = r.rate !== undefined ? parseRate(r.rate) : undefined;
  const where = provider !== undefined ? `provider=${provider}` : `destination=${r.destination ?? '*'}`;
  const parts = [`action=${r.action}`, `match=/${r.match}/`, ...(r.code !== undefined ? [`code=${r.code}`] : []), where,
    ...(r.action !== 'bounce' ? [`for=${r.for}`] : []), ...(r.action === 'slow_down' ? [`factor=${r.factor}`] : []),
    ...(r.max_connections !== undefined ? [`max_connections=${r.max_connections}`] : []),
    ...(r.rate !== undefined ? [`rate=${r.rate}`] : [])];
  const source = 'source' in r ? r.source : undefined;
  return {
    index, match: new RegExp(r.match, 'i'), action: r.action, forMs: durationMs(r.for), factor: r.factor,
    destination: r.destination ?? '*', destinationRe: globToRegExp(r.destination ?? '*'),
    text: `${provider !== undefined ? `providers.${provider}.` : ''}rules[${index}] ${parts.join(' ')}`,
    ...(r.code !== undefined ? { code: r.code } : {}),
    ...(r.max_connections !== undefined ? { maxConnections: r.max_connections } : {}),
    ...(rate ? { rate } : {}),
    ...(provider !== undefined ? { provider } : {}),
    ...(source !== undefined ? { source } : {}),
  };
}

/** The operator's `[[delivery.rules]]`, indexed from 0 (their position). */
export function compileRules(cfg: readonly ReplyRuleConfig[]): ReplyRule[] {
  return cfg.map((r, index) => compileRule(r, index));
}

/**
 * The providers' rules, after the operator's (their index goes on from `offset`, so every rule in force has
 * one index, the same on every node with the same configuration). Their text names the provider's own list.
 */
export function compileProviderRules(providers: readonly { readonly name: string; readonly rules: readonly ProviderRuleConfig[] }[], offset: number): ReplyRule[] {
  const out: ReplyRule[] = [];
  for (const p of providers) {
    p.rules.forEach((r, i) => {
      const rule = compileRule(r, offset + out.length, p.name);
      out.push({ ...rule, text: rule.text.replace(`rules[${rule.index}]`, `rules[${i}]`) });
    });
  }
  return out;
}

/** What a rule's regex is tested against: the enhanced code (if any) and the text. */
export const replySubject = (reply: Pick<LastReply, 'enhanced' | 'text'>): string => (reply.enhanced ? `${reply.enhanced} ${reply.text}` : reply.text);

/**
 * The first rule a reply from `destination` (of `provider`, when it is one's) triggers, or undefined. 2xx/3xx
 * replies trigger nothing. A provider's rule matches only its provider's destinations.
 */
export function matchRule(rules: readonly ReplyRule[], destination: string, reply: Pick<LastReply, 'code' | 'enhanced' | 'text'>, provider?: string): ReplyRule | undefined {
  if (reply.code < 400) return undefined;
  const subject = replySubject(reply);
  return rules.find((r) => (r.code === undefined || r.code === reply.code)
    && (r.provider !== undefined ? r.provider === provider : r.destinationRe.test(destination)) && r.match.test(subject));
}

/** A rule in force on a destination (stored on its gate row, so every node and the next start honour it). */
export type ActiveRule = DestinationRule;

export const formatReply = (r: Pick<LastReply, 'code' | 'enhanced' | 'text'>): string => `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.text}`;

/**
 * The active rules after `rule` triggered at `now`: expired ones dropped, this
 * rule (re)started. A bounce rule acts on the recipient only and is not kept; nor is a slow_down without a
 * pause (its cut is the adaptive rate's), nor a suspend_tenant (its hold is the tenant's, destination/tenants).
 */
export function triggerRule(active: readonly ActiveRule[], rule: ReplyRule, reply: Pick<LastReply, 'code' | 'enhanced' | 'text'>, now: number): ActiveRule[] {
  const kept = active.filter((a) => a.until > now && a.index !== rule.index);
  if (rule.action === 'bounce' || rule.action === 'suspend_tenant' || (rule.action === 'slow_down' && rule.forMs <= 0)) return kept;
  const since = active.find((a) => a.index === rule.index && a.until > now)?.since ?? now;
  return [...kept, {
    index: rule.index, action: rule.action, rule: rule.text, until: now + rule.forMs, since, reply: formatReply(reply),
    ...(rule.maxConnections !== undefined ? { maxConnections: rule.maxConnections } : {}),
    ...(rule.rate ? { rate: rule.rate } : {}),
  }].sort((a, b) => a.index - b.index);
}

export interface RuleEffect {
  /** No connection before this time (a suspend in force). */
  readonly suspendedUntil?: number;
  readonly maxConnections?: number;
  readonly rate?: { readonly count: number; readonly perMs: number };
}

/** What the rules in force at `now` say; the lowest cap and the slowest rate win. */
export function ruleEffect(active: readonly ActiveRule[], now: number): RuleEffect {
  let effect: { suspendedUntil?: number; maxConnections?: number; rate?: { count: number; perMs: number } } = {};
  for (const a of active) {
    if (a.until <= now) continue;
    if (a.action === 'suspend' || a.action === 'slow_down') effect = { ...effect, suspendedUntil: Math.max(effect.suspendedUntil ?? 0, a.until) };
    if (a.maxConnections !== undefined) effect = { ...effect, maxConnections: Math.min(effect.maxConnections ?? Infinity, a.maxConnections) };
    if (a.rate && (!effect.rate || a.rate.count / a.rate.perMs < effect.rate.count / effect.rate.perMs)) effect = { ...effect, rate: a.rate };
  }
  return effect;
}

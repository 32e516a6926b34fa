/**
 * destination/reply-rules — `[[delivery.rules]]` as pure functions: which rule
 * (if any) a destination's reply triggers, and what the rules in force say
 * about that destination now (suspended until, connection cap, rate).
 * KumoMTA's traffic-shaping automation is the reference.
 *
 * A rule matches when its `destination` glob matches the destination key,
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
 * - `bounce` — the recipient whose reply matched fails at once (one DSN),
 *   instead of being retried. Only ever applied to a recipient's own
 *   temporary result; never turns a delivered recipient into anything.
 *
 * No clock (callers pass `now`), no state, no I/O.
 */
import type { ReplyRuleConfig } from '../config/schema.js';
import { durationMs, parseRate } from '../config/units.js';
import type { DestinationRule, LastReply } from '../queue/model.js';

export interface ReplyRule {
  /** Position in `delivery.rules` (0-based): the rule's name in logs and `halcyon destinations`. */
  readonly index: number;
  readonly match: RegExp;
  readonly code?: number;
  readonly action: 'suspend' | 'set' | 'bounce';
  readonly forMs: number;
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

export function compileRules(cfg: readonly ReplyRuleConfig[]): ReplyRule[] {
  return cfg.map((r, index) => {
    const rate = r.rate !== undefined ? parseRate(r.rate) : undefined;
    const parts = [`action=${r.action}`, `match=/${r.match}/`, ...(r.code !== undefined ? [`code=${r.code}`] : []), `destination=${r.destination}`,
      ...(r.action !== 'bounce' ? [`for=${r.for}`] : []), ...(r.max_connections !== undefined ? [`max_connections=${r.max_connections}`] : []),
      ...(r.rate !== undefined ? [`rate=${r.rate}`] : [])];
    return {
      index, match: new RegExp(r.match, 'i'), action: r.action, forMs: durationMs(r.for),
      destination: r.destination, destinationRe: globToRegExp(r.destination), text: `rules[${index}] ${parts.join(' ')}`,
      ...(r.code !== undefined ? { code: r.code } : {}),
      ...(r.max_connections !== undefined ? { maxConnections: r.max_connections } : {}),
      ...(rate ? { rate } : {}),
    };
  });
}

/** What a rule's regex is tested against: the enhanced code (if any) and the text. */
export const replySubject = (reply: Pick<LastReply, 'enhanced' | 'text'>): string => (reply.enhanced ? `${reply.enhanced} ${reply.text}` : reply.text);

/** The first rule a reply from `destination` triggers, or undefined. 2xx/3xx replies trigger nothing. */
export function matchRule(rules: readonly ReplyRule[], destination: string, reply: Pick<LastReply, 'code' | 'enhanced' | 'text'>): ReplyRule | undefined {
  if (reply.code < 400) return undefined;
  const subject = replySubject(reply);
  return rules.find((r) => (r.code === undefined || r.code === reply.code) && r.destinationRe.test(destination) && r.match.test(subject));
}

/** A rule in force on a destination (stored on its gate row, so every node and the next start honour it). */
export type ActiveRule = DestinationRule;

export const formatReply = (r: Pick<LastReply, 'code' | 'enhanced' | 'text'>): string => `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.text}`;

/**
 * The active rules after `rule` triggered at `now`: expired ones dropped, this
 * rule (re)started. A bounce rule acts on the recipient only and is not kept.
 */
export function triggerRule(active: readonly ActiveRule[], rule: ReplyRule, reply: Pick<LastReply, 'code' | 'enhanced' | 'text'>, now: number): ActiveRule[] {
  const kept = active.filter((a) => a.until > now && a.index !== rule.index);
  if (rule.action === 'bounce') return kept;
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
    if (a.action === 'suspend') effect = { ...effect, suspendedUntil: Math.max(effect.suspendedUntil ?? 0, a.until) };
    if (a.maxConnections !== undefined) effect = { ...effect, maxConnections: Math.min(effect.maxConnections ?? Infinity, a.maxConnections) };
    if (a.rate && (!effect.rate || a.rate.count / a.rate.perMs < effect.rate.count / effect.rate.perMs)) effect = { ...effect, rate: a.rate };
  }
  return effect;
}

/**
 * smtp/bounce-rules — THE bounce classifier: decides the class
 * (smtp/bounce-class) of a reply from its code, its enhanced code, its text
 * and the phase it answered, by the first matching rule of an ordered list.
 * The rules come from TOML files (the shipped data/bounce-classes.toml, after
 * any the operator names in `bounces.rules`); this module parses their text
 * and matches against them. Every outcome's class comes from here: the
 * scheduler, the sweeps, the suppression check and recipient verification
 * call it, none re-derives a class of its own.
 *
 * A rule, as written in a file:
 *
 *   [[rule]]
 *   class    = "InvalidRecipient"       # required, one of BOUNCE_CLASSES
 *   text     = "does not exist"         # regex, case-insensitive, on the text (white space collapsed)
 *   enhanced = ["5.1.1", "X.1.3", "5.7.*"]  # X: 4 or 5; *: any detail
 *   code     = ["550", "55x", "5xx"]
 *   phase    = ["RCPT TO", "end of DATA"]   # the command the reply answered
 *   source   = "https://…"              # where the reply is documented (for readers)
 *
 * Every key present must match (an absent key matches anything); a rule with
 * none of text/enhanced/code/phase is an error. A 2xx is `Delivered` before
 * any rule is read; a reply no rule matches is `TransientFailure` (4xx) or
 * `Uncategorized` (5xx and anything else).
 *
 * Pure: text in, rules out; reply in, class out. No files, no clock. Reading
 * the files is config/bounce-rules-file's job.
 */
import { parse as parseToml } from 'smol-toml';
import { type BounceClass, BOUNCE_CLASS_NAMES, isBounceClass } from './bounce-class.js';
import { splitEnhanced } from './reply.js';

/** What the classifier reads of a reply (a LastReply fits). */
export interface ClassifiableReply {
  readonly code: number;
  readonly enhanced?: string | undefined;
  readonly text: string;
  /** The command it answered: "RCPT TO", "MAIL FROM", "end of DATA", "connect", "resolve" … */
  readonly command?: string | undefined;
}

export interface BounceRule {
  readonly class: BounceClass;
  readonly text?: RegExp;
  /** Compiled once, when the file is read: a classification only compares numbers. */
  readonly enhanced?: readonly EnhancedPattern[];
  readonly code?: readonly string[];
  readonly phase?: readonly string[];
  /** "data/bounce-classes.toml rule 12" — for `explain` and error messages. */
  readonly origin: string;
}

/** "X.7.*" as read: class digit (undefined: X, 4 or 5), subject, detail (undefined: *). */
export interface EnhancedPattern {
  readonly cls: number | undefined;
  readonly subject: number;
  readonly detail: number | undefined;
}

export interface Classification {
  readonly class: BounceClass;
  /** The rule that decided, or "2xx" / "no rule matched". */
  readonly rule: string;
}

export interface RuleProblem {
  readonly path: string;
  readonly message: string;
}

const ENHANCED_PATTERN = /^([245X])\.(\d{1,3})\.(\d{1,3}|\*)$/;
const CODE_PATTERN = /^[2-5](\d|x)(\d|x)$/;
const KEYS = new Set(['class', 'text', 'enhanced', 'code', 'phase', 'source', 'note']);

const asList = (v: unknown): unknown[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

/** Parses one rule file; problems (never a throw) for anything wrong, each with its rule's position. */
export function parseBounceRules(toml: string, name: string): { rules: BounceRule[]; problems: RuleProblem[] } {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(toml) as Record<string, unknown>;
  } catch (err) {
    return { rules: [], problems: [{ path: name, message: `not TOML: ${(err as Error).message.split('\n')[0]}` }] };
  }
  const problems: RuleProblem[] = [];
  for (const k of Object.keys(doc)) if (k !== 'rule') problems.push({ path: `${name}: ${k}`, message: 'unknown key (a rule file holds [[rule]] tables only)' });
  const raw = doc['rule'] === undefined ? [] : doc['rule'];
  if (!Array.isArray(raw)) return { rules: [], problems: [...problems, { path: `${name}: rule`, message: 'expected [[rule]] tables' }] };
  const rules: BounceRule[] = [];
  raw.forEach((r: unknown, i) => {
    const where = `${name} rule ${i + 1}`;
    const bad = (message: string) => problems.push({ path: where, message });
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return bad('expected a table');
    const t = r as Record<string, unknown>;
    for (const k of Object.keys(t)) if (!KEYS.has(k)) bad(`unknown key "${k}"`);
    const cls = t['class'];
    if (typeof cls !== 'string' || !isBounceClass(cls)) return bad(`class must be one of ${BOUNCE_CLASS_NAMES.join(', ')}`);
    let text: RegExp | undefined;
    if (t['text'] !== undefined) {
      if (typeof t['text'] !== 'string') return bad('text must be a string (a regular expression)');
      try {
        text = new RegExp(t['text'], 'i');
      } catch (err) {
        return bad(`text is not a regular expression: ${(err as Error).message}`);
      }
    }
    const enhanced = asList(t['enhanced']);
    if (enhanced && !enhanced.every((e) => typeof e === 'string' && ENHANCED_PATTERN.test(e))) return bad('enhanced must be codes like "5.1.1", "X.1.1" or "5.7.*"');
    const code = asList(t['code'])?.map((c) => (typeof c === 'number' ? String(c) : c));
    if (code && !code.every((c) => typeof c === 'string' && CODE_PATTERN.test(c))) return bad('code must be codes like 550, "55x" or "5xx"');
    const phase = asList(t['phase']);
    if (phase && !phase.every((p) => typeof p === 'string' && p.length > 0)) return bad('phase must be command names like "RCPT TO"');
    if (!text && !enhanced && !code && !phase) return bad('a rule needs at least one of text, enhanced, code, phase');
    rules.push({
      class: cls, origin: where,
      ...(text ? { text } : {}),
      ...(enhanced ? { enhanced: (enhanced as string[]).map(compileEnhanced) } : {}),
      ...(code ? { code: code as string[] } : {}),
      ...(phase ? { phase: phase as string[] } : {}),
    });
  });
  return { rules, problems };
}

function compileEnhanced(pattern: string): EnhancedPattern {
  const [, cls, subject, detail] = ENHANCED_PATTERN.exec(pattern)!;
  return { cls: cls === 'X' ? undefined : Number(cls), subject: Number(subject), detail: detail === '*' ? undefined : Number(detail) };
}

/** A reply's enhanced code as numbers. */
interface EnhancedCode {
  readonly cls: number;
  readonly subject: number;
  readonly detail: number;
}

/** Read once per classification, not once per rule. */
function readEnhanced(enhanced: string | undefined): EnhancedCode | undefined {
  const e = enhanced === undefined ? null : /^(\d)\.(\d{1,3})\.(\d{1,3})$/.exec(enhanced);
  return e ? { cls: Number(e[1]), subject: Number(e[2]), detail: Number(e[3]) } : undefined;
}

function enhancedMatches(p: EnhancedPattern, e: EnhancedCode): boolean {
  return (p.cls === undefined ? e.cls === 4 || e.cls === 5 : p.cls === e.cls)
    && p.subject === e.subject
    && (p.detail === undefined || p.detail === e.detail);
}

function codeMatches(pattern: string, code: number): boolean {
  const c = String(code);
  return c.length === 3 && [...pattern].every((ch, i) => ch === 'x' || ch === c[i]);
}

/** The enhanced code of a reply: its own field, else one at the start of its text as smtp/reply reads it (class digit = the code's). */
function enhancedOf(r: ClassifiableReply): string | undefined {
  return r.enhanced || splitEnhanced(r.code, r.text.trimStart()).enhanced;
}

function ruleMatches(rule: BounceRule, r: ClassifiableReply, enhanced: EnhancedCode | undefined, text: string): boolean {
  if (rule.code && !rule.code.some((p) => codeMatches(p, r.code))) return false;
  if (rule.enhanced && (enhanced === undefined || !rule.enhanced.some((p) => enhancedMatches(p, enhanced)))) return false;
  if (rule.phase && (r.command === undefined || !rule.phase.includes(r.command))) return false;
  if (rule.text && !rule.text.test(text)) return false;
  return true;
}

/** The class of a reply, and the rule that decided it. */
export function classifyReply(rules: readonly BounceRule[], r: ClassifiableReply): Classification {
  if (r.code >= 200 && r.code < 300) return { class: 'Delivered', rule: '2xx' };
  const enhanced = readEnhanced(enhancedOf(r));
  // Multi-line replies arrive joined by spaces; providers wrap their sentences anywhere.
  const text = r.text.replace(/\s+/g, ' ').trim();
  for (const rule of rules) if (ruleMatches(rule, r, enhanced, text)) return { class: rule.class, rule: rule.origin };
  return { class: r.code >= 400 && r.code < 500 ? 'TransientFailure' : 'Uncategorized', rule: 'no rule matched' };
}

/** The classifier the rest of Halcyon is given: the rules, in order (the operator's first, the shipped ones last). */
export class BounceClassifier {
  constructor(readonly rules: readonly BounceRule[]) {}

  classify(r: ClassifiableReply): BounceClass {
    return classifyReply(this.rules, r).class;
  }

  explain(r: ClassifiableReply): Classification {
    return classifyReply(this.rules, r);
  }
}

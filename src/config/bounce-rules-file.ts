/**
 * config/bounce-rules-file — reads the bounce classification rules from disk:
 * the operator's files (`bounces.rules`, in order) and then the shipped
 * data/bounce-classes.toml, found beside the package whether Halcyon runs
 * from dist/, from its sources or from an installed package. Returns the
 * classifier (smtp/bounce-rules) the app hands to everything that labels an
 * outcome; a file that cannot be read or holds a bad rule is a ConfigError
 * naming the file and the rule, so `config check`, startup and SIGHUP refuse
 * it like any other bad setting.
 *
 * Does not classify anything itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BounceClassifier, parseBounceRules, type BounceRule } from '../smtp/bounce-rules.js';
import { ConfigError } from './file.js';
import { shippedDataPath } from './shipped-data.js';

const SHIPPED = join('data', 'bounce-classes.toml');

/** The shipped rule file: the first data/bounce-classes.toml above this module (dist/src/config or src/config). */
export function shippedRulesPath(): string {
  return shippedDataPath('bounce-classes.toml', 'bounces');
}

function readRules(file: string, name: string): BounceRule[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: 'bounces.rules', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  const { rules, problems } = parseBounceRules(text, name);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return rules;
}

let shipped: BounceRule[] | undefined;

/** The shipped rules alone (read once per process): what a classifier without operator files uses. */
export function shippedRules(): readonly BounceRule[] {
  shipped ??= readRules(shippedRulesPath(), SHIPPED);
  return shipped;
}

let shippedOnly: BounceClassifier | undefined;

/** The classifier of the shipped rules alone: for callers not given one (tools, tests), never a second set of rules. */
export function shippedClassifier(): BounceClassifier {
  shippedOnly ??= new BounceClassifier(shippedRules());
  return shippedOnly;
}

/** The classifier for a config: the operator's files first (their rules win), then the shipped ones. */
export function loadBounceClassifier(files: readonly string[] = []): BounceClassifier {
  return new BounceClassifier([...files.flatMap((f) => readRules(f, f)), ...shippedRules()]);
}

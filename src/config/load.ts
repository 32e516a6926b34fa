/**
 * config/load — reads a TOML file (or nothing, for embedded defaults),
 * validates it against the schema and reports every error with its key path.
 *
 * Does not watch files or apply a config; reload (SIGHUP) is app's job.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly code = 'HAL_ERR_CONFIG';
  constructor(readonly file: string | undefined, readonly problems: readonly ConfigProblem[]) {
    super(`${file ?? 'config'}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    this.name = 'ConfigError';
  }
}

const pathText = (path: readonly PropertyKey[]): string => (path.length ? path.map(String).join('.') : '(top)');

/**
 * One problem per zod issue, with its full key path. A value that matches no
 * branch of a union (a route is a string, a list or a table) is reported by
 * the branch of its own type — `routes.x.tls: Invalid option: expected one of
 * "none"|…` — rather than zod's bare "Invalid input".
 */
function problemsOf(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): ConfigProblem[] {
  return issues.flatMap((i): ConfigProblem[] => {
    const path = [...prefix, ...i.path];
    if (i.code === 'invalid_union' && i.errors.length > 0) {
      const sameType = i.errors.filter((branch) => !branch.some((b) => b.code === 'invalid_type' && b.path.length === 0));
      if (sameType.length > 0) return problemsOf(sameType[0]!, path);
      const expected = i.errors.flatMap((branch) => branch.flatMap((b) => (b.code === 'invalid_type' ? [b.expected] : [])));
      return [{ path: pathText(path), message: `expected ${[...new Set(expected)].join(' or ')}` }];
    }
    return [{ path: pathText(path), message: i.code === 'unrecognized_keys' ? `unknown key(s): ${i.keys.join(', ')}` : i.message }];
  });
}

export function parseConfig(raw: unknown, file?: string): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(file, problemsOf(result.error.issues));
  return result.data;
}

/** Loads FILE, or the embedded defaults when file is undefined. */
export function loadConfig(file?: string): Config {
  if (file === undefined) return parseConfig({});
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '(file)', message: (err as Error).message }]);
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    // smol-toml's TomlError carries line and column (1-based); its message repeats them in a code excerpt.
    const e = err as Error & { line?: number; column?: number };
    const what = e.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'parse error';
    const where = e.line !== undefined ? `line ${e.line}, column ${e.column ?? 0}: ` : '';
    throw new ConfigError(file, [{ path: '(toml)', message: `${where}${what}` }]);
  }
  return parseConfig(raw, file);
}

/** The config file named on the command line or by HALCYON_CONFIG, if any. */
export function configFileFrom(option: string | undefined): string | undefined {
  return option ?? (process.env.HALCYON_CONFIG || undefined);
}

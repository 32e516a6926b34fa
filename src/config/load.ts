/**
 * config/load — reads a TOML file (config/file; or nothing, for embedded
 * defaults), validates it against the schema and reports every error with
 * its key path.
 *
 * Does not watch files or apply a config; reload (SIGHUP) is app's job.
 */
import type { z } from 'zod';
import { ConfigError, readConfigFile, type ConfigProblem } from './file.js';
import { configSchema, type Config } from './schema.js';

/** Defined in config/file (read without the schema, by the CLI); re-exported for their callers. */
export { ConfigError, configFileFrom, type ConfigProblem } from './file.js';

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
  return parseConfig(readConfigFile(file), file);
}

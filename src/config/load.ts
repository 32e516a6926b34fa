/**
 * config/load — reads a TOML file (or nothing, for embedded defaults),
 * validates it against the schema and reports every error with its key path.
 *
 * Does not watch files or apply a config; reload (SIGHUP) is app's job.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
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

export function parseConfig(raw: unknown, file?: string): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.map((i) => ({
      path: i.path.length ? i.path.map(String).join('.') : '(top)',
      message: i.code === 'unrecognized_keys' ? `unknown key(s): ${i.keys.join(', ')}` : i.message,
    })));
  }
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
    throw new ConfigError(file, [{ path: '(toml)', message: (err as Error).message.split('\n')[0] ?? 'parse error' }]);
  }
  return parseConfig(raw, file);
}

/** The config file named on the command line or by HALCYON_CONFIG, if any. */
export function configFileFrom(option: string | undefined): string | undefined {
  return option ?? (process.env.HALCYON_CONFIG || undefined);
}

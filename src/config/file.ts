/**
 * config/file — the config file as written: read and parsed as TOML, not
 * validated (config/load validates it against the schema). A file that cannot
 * be read or is not TOML is a ConfigError naming the file, with the line and
 * column. Also which file: `--config`, else $HALCYON_CONFIG, else none (the
 * embedded defaults).
 *
 * Loads no schema, so a CLI command that needs one setting (where the admin
 * API listens) reads it here without paying for validation.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';

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

/** FILE's TOML as a tree, or {} (the embedded defaults) when file is undefined. */
export function readConfigFile(file: string | undefined): Record<string, unknown> {
  if (file === undefined) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '(file)', message: (err as Error).message }]);
  }
  try {
    return parseToml(text);
  } catch (err) {
    // smol-toml's TomlError carries line and column (1-based); its message repeats them in a code excerpt.
    const e = err as Error & { line?: number; column?: number };
    const what = e.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'parse error';
    const where = e.line !== undefined ? `line ${e.line}, column ${e.column ?? 0}: ` : '';
    throw new ConfigError(file, [{ path: '(toml)', message: `${where}${what}` }]);
  }
}

/** The config file named on the command line or by HALCYON_CONFIG, if any. */
export function configFileFrom(option: string | undefined): string | undefined {
  return option ?? (process.env.HALCYON_CONFIG || undefined);
}

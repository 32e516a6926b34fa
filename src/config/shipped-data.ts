/**
 * config/shipped-data — finds a data file shipped with Halcyon (data/*.toml):
 * the first data/NAME above this module, so it is found whether Halcyon runs
 * from dist/, from its sources or from an installed package.
 *
 * Does not read or parse the file.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from './file.js';

/** The path of data/`name`; a missing file is a ConfigError under `settingPath` (the setting it serves). */
export function shippedDataPath(name: string, settingPath: string): string {
  const rel = join('data', name);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, rel);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new ConfigError(undefined, [{ path: settingPath, message: `the shipped ${rel} is missing from the installation` }]);
}

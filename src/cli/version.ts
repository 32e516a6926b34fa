/**
 * cli/version — Halcyon's version, as package.json says it (read from the
 * package this file is part of, so the two never disagree). Nothing else.
 */
import { readFileSync } from 'node:fs';

/** dist/src/cli/version.js → the package's root. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * cli/generated — the files of the repository (and the npm package) that
 * are made from the code, by path: docs/configuration.md, man/halcyon.8,
 * completions/halcyon.bash, completions/_halcyon. scripts/gen-docs writes
 * them; test/ops/generated-files checks each on disk equals this. One
 * list, so a new generated file is written and checked alike.
 */
import { bashCompletion, zshCompletion } from './completion.js';
import { configDocs, configRows } from '../config/docs.js';
import { manPage } from './man.js';
import { buildProgram } from './program.js';
import { VERSION } from './version.js';

export function generatedFiles(): Record<string, string> {
  const program = buildProgram();
  return {
    'docs/configuration.md': configDocs(),
    'man/halcyon.8': manPage(program, configRows(), VERSION),
    'completions/halcyon.bash': bashCompletion(program),
    'completions/_halcyon': zshCompletion(program),
  };
}

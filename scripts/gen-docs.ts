/**
 * scripts/gen-docs — writes the files made from the code, so they cannot
 * drift from it (tests check each is current): docs/configuration.md (the
 * config schema), man/halcyon.8 (commander definitions + schema),
 * completions/halcyon.bash and completions/_halcyon (commander definitions).
 * Run: `npm run gen-docs` (builds first). Writes nothing else.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../src/cli/generated.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
for (const [path, text] of Object.entries(generatedFiles())) {
  mkdirSync(dirname(join(repo, path)), { recursive: true });
  writeFileSync(join(repo, path), text);
  process.stdout.write(`wrote ${path}\n`);
}

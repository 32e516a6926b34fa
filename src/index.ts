/**
 * src/index — not an API: makes `node --test dist/src` (a directory, as the
 * landing script runs it) run the unit tests on Node 24. See scripts/test-dir.
 */
import { fileURLToPath } from 'node:url';
import { runTestsBelow } from '../scripts/test-dir.js';

process.exitCode = runTestsBelow(fileURLToPath(new URL('.', import.meta.url)));

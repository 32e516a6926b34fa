/**
 * test/index — makes `node --test dist/test` (a directory, as the landing
 * script runs it) run the integration tests on Node 24. See scripts/test-dir.
 */
import { fileURLToPath } from 'node:url';
import { runTestsBelow } from '../scripts/test-dir.js';

process.exitCode = runTestsBelow(fileURLToPath(new URL('.', import.meta.url)));

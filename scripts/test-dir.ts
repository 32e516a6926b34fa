/**
 * scripts/test-dir — runs every `*.test.js` below a directory with node's
 * test runner, for `node --test dist/src dist/test`: Node 20's runner took
 * directories, Node 22 and later take files and globs only and would run
 * the directory itself as a module (dist/src/index.js, dist/test/index.js,
 * which call this). The files run in a child `node --test` (one at a time,
 * so the outer `--test-concurrency=2` still means two test files at once),
 * which reports in TAP on the same stdout; its exit code is the directory's.
 * `npm test` names the files with globs and does not come here.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export function runTestsBelow(dir: string): number {
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.js')).map((f) => join(dir, f)).sort();
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // the child is a runner of its own, not a test file of the outer one
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...files], { stdio: ['ignore', 'inherit', 'inherit'], env });
  return r.status ?? 1;
}

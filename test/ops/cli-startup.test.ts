/**
 * test/ops/cli-startup — the read commands load what they need and nothing
 * of the server (issue 26, "a fast CLI"): `--version` loads commander and the
 * command table only; `queue list|show|shape`, `destinations` and `config
 * show` against a running server load no server module (inbound, intake,
 * scheduler, delivery, dsn, events, local mailboxes, app), no store, no
 * config schema (zod), no logger; against a stopped server's data_dir they
 * load the SQLite store and the schema but still nothing of the server.
 *
 * Each run is the built bin with test/support/module-log loaded through
 * NODE_OPTIONS, which lists every module the process loaded. Speed itself is
 * measured, not tested (docs/decisions/0012).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';

const HOOK = fileURLToPath(new URL('../support/module-log.js', import.meta.url));
const VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

/** Halcyon's own modules that belong to the server, never to a client command. */
const SERVER_MODULE = /\/dist\/src\/(app\.js|inbound\/|intake\/|scheduler\/|delivery\/|dsn\/|events\/|local\/|destination\/|log\.js)/;
const pkg = (name: string) => new RegExp(`/node_modules/${name}/`);

const logDir = mkdtempSync(join(tmpdir(), 'halcyon-modlog-'));
let runs = 0;

/** Runs the CLI; returns its result and the file URLs of the modules it loaded. */
async function traced(args: readonly string[]) {
  const log = join(logDir, `run-${++runs}.txt`);
  const r = await runCli(args, { env: { NODE_OPTIONS: `--import ${HOOK}`, HALCYON_MODULE_LOG: log } });
  const modules = readFileSync(log, 'utf8').split('\n').filter((u) => u.startsWith('file:'));
  return { ...r, modules };
}

function assertNone(modules: readonly string[], pattern: RegExp, what: string): void {
  const found = modules.filter((m) => pattern.test(m));
  assert.deepEqual(found, [], `${what} loaded: ${found.join(', ')}`);
}

after(() => rmSync(logDir, { recursive: true, force: true }));

test('--version prints package.json\'s version and loads commander and the command table only', async () => {
  const r = await traced(['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), VERSION);
  const others = r.modules.filter((m) => !/\/dist\/src\/cli\/(main|program|version)\.js$/.test(m) && !pkg('commander').test(m));
  assert.deepEqual(others, []);
});

describe('read commands', () => {
  let h: SpawnedHalcyon;
  let id: string;

  before(async () => {
    const dead = await freePort();
    h = await spawnHalcyon(`[routes]\n"dead.test" = "127.0.0.1:${dead}"\n`, { http: true, readyTimeoutMs: 60_000 });
    const sent = await runCli(['sendmail', '-C', h.configFile, '-f', 'ann@example.test', 'bob@dead.test'], { input: 'Subject: waits\n\nhello\n' });
    assert.equal(sent.code, 0, sent.stderr);
    id = /queued as ([0-9A-Z]{16})/.exec(sent.stderr + sent.stdout)?.[1] ?? (JSON.parse((await runCli(['queue', 'list', '--json', '--config', h.configFile])).stdout) as { message: { id: string } }[])[0]!.message.id;
  });
  after(() => h.kill('SIGTERM'));

  test('against a running server: no server module, no store, no schema, no logger', async () => {
    const cases: [string[], RegExp][] = [
      [['queue', 'list'], /bob@dead\.test/],
      [['queue', 'show', id], /<bob@dead\.test>/],
      [['queue', 'shape'], /dead\.test/],
      [['destinations'], /127\.0\.0\.1/],
      [['config', 'show'], /\[http\]/],
      [['config', 'show', 'http.listen'], new RegExp(`^http\\.listen = "127\\.0\\.0\\.1:${h.httpPort}"\\n$`)],
    ];
    for (const [args, shows] of cases) {
      const r = await traced([...args, '--config', h.configFile]);
      const what = `halcyon ${args.join(' ')}`;
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.match(r.stdout, shows, what);
      assertNone(r.modules, SERVER_MODULE, `${what}: server module`);
      assertNone(r.modules, /\/dist\/src\/queue\/(sqlite|pg)\//, `${what}: store`);
      for (const name of ['zod', 'better-sqlite3', 'pg', 'pino', 'mailauth']) assertNone(r.modules, pkg(name), `${what}: ${name}`);
    }
  });

  test('against the stopped server\'s data_dir: the store and the schema, still no server module', async () => {
    await h.kill('SIGTERM');
    for (const args of [['queue', 'list'], ['queue', 'show', id], ['destinations'], ['events', 'status']]) {
      const r = await traced([...args, '--config', h.configFile]);
      const what = `halcyon ${args.join(' ')} (server stopped)`;
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assertNone(r.modules, SERVER_MODULE, `${what}: server module`);
      for (const name of ['pg', 'pino', 'mailauth']) assertNone(r.modules, pkg(name), `${what}: ${name}`);
    }
    const list = await traced(['queue', 'list', '--config', h.configFile]);
    assert.match(list.stdout, new RegExp(`${id}[^\\n]*<ann@example\\.test>`));
    assert.ok(list.modules.some((m) => /\/dist\/src\/queue\/sqlite\/store\.js$/.test(m)), 'read the data_dir store');
  });
});

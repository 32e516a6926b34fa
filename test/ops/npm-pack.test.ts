/**
 * test/ops/npm-pack — the npm package as a user gets it: `npm pack` in the
 * repository (the built dist), then `npm i -g --prefix TMP ./halcyon-mta-V.tgz`
 * (dependencies from the registry, or npm's cache), then the man page in
 * TMP/share/man/man8, TMP/bin/halcyon
 * `--version` and `serve --config FILE`, which answers SMTP on a loopback
 * port and delivers a message to a local mailbox (so the queue's SQLite
 * driver and the shipped data files work from the install), running on the
 * Node 24 the package brought (/proc/PID/exe).
 *
 * One stand-in, said plainly: better-sqlite3's install script
 * (prebuild-install) downloads a prebuilt binary from GitHub releases, which
 * this machine cannot reach. The test serves the binary `npm ci` built here,
 * in prebuild-install's layout, from a loopback mirror
 * (npm_config_better_sqlite3_binary_host), so the install takes the path a
 * user's does (download, not a 100 s compile). Everything else is the real
 * npm with the real tarball; npm's own environment from `npm test` is not
 * passed on. Bounded: the install may take up to 5 minutes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnHalcyon } from '../support/halcyon.js';
import { halcyonMaildir, message, submit, waitUntil } from '../support/postfix.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };

/** This environment without npm's own variables (npm test sets dozens): npm as a user's shell runs it. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

test('npm pack → npm i -g --prefix TMP ./THE.tgz → halcyon --version, and serve answers SMTP and delivers', { timeout: 600_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'halcyon-pack-'));
  const mirror = createServer((req, res) => {
    // prebuild-install asks for /v{version}/better-sqlite3-v{version}-node-v{abi}-linux-x64.tar.gz.
    const file = join(tmp, 'mirror', decodeURIComponent(req.url ?? '/'));
    if (!file.startsWith(join(tmp, 'mirror')) || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/gzip' });
    createReadStream(file).pipe(res);
  });
  let served = 0;
  mirror.on('request', () => { served++; });
  try {
    // 1. The tarball: what `files` ships, the lockfile riding along as npm-shrinkwrap.json (prepack/postpack).
    const packed = await run('npm', ['pack', '--pack-destination', tmp, '--json'], { cwd: REPO, env: userEnv({}), maxBuffer: 64 * 1024 * 1024 });
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    assert.ok(info);
    assert.equal(info.filename, `${pkg.name}-${pkg.version}.tgz`);
    const files = info.files.map((f) => f.path);
    for (const f of ['package.json', 'npm-shrinkwrap.json', 'dist/src/cli/main.js', 'dist/src/queue/sqlite/store-worker.js', 'data/bounce-classes.toml',
      'src/http/ui/dashboard.css', 'man/halcyon.8', 'completions/halcyon.bash', 'completions/_halcyon', 'scripts/install.sh', 'docs/halcyon.service', 'docs/configuration.md']) {
      assert.ok(files.includes(f), `the package ships ${f}`);
    }
    assert.deepEqual(files.filter((f) => /\.test\.js$|\.map$|^dist\/(test|bench|scripts)\/|\.ts$/.test(f)), [], 'no tests, maps, benches or sources');
    assert.ok(!existsSync(join(REPO, 'npm-shrinkwrap.json')), 'postpack removed the shrinkwrap copy');

    // 2. The loopback mirror with the better-sqlite3 binary built here, for the Node the package brings.
    const abi = execFileSync(join(REPO, 'node_modules/.bin/node'), ['-p', 'process.versions.modules'], { encoding: 'utf8' }).trim();
    const bs = JSON.parse(readFileSync(join(REPO, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string };
    mkdirSync(join(tmp, 'mirror', `v${bs.version}`), { recursive: true });
    execFileSync('tar', ['czf', join(tmp, 'mirror', `v${bs.version}`, `better-sqlite3-v${bs.version}-node-v${abi}-linux-x64.tar.gz`), 'build/Release/better_sqlite3.node'],
      { cwd: join(REPO, 'node_modules/better-sqlite3') });
    await new Promise<void>((resolve) => mirror.listen(0, '127.0.0.1', resolve));
    const mirrorUrl = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;

    // 3. The global install, as the README says: allowing better-sqlite3's install script.
    const prefix = join(tmp, 'g');
    await run('npm', ['i', '-g', '--prefix', prefix, join(tmp, info.filename), '--allow-scripts=better-sqlite3', '--prefer-offline', '--no-audit', '--no-fund'],
      { cwd: tmp, env: userEnv({ npm_config_better_sqlite3_binary_host: mirrorUrl }), timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
    assert.ok(served >= 1, 'better-sqlite3 took its binary from the mirror');
    const bin = join(prefix, 'bin', 'halcyon');
    assert.equal(readlinkSync(bin), `../lib/node_modules/${pkg.name}/dist/src/cli/main.js`);

    // The man page, where `man halcyon` finds it under the prefix (package.json `man`).
    assert.ok(existsSync(join(prefix, 'share/man/man8/halcyon.8')), 'npm linked the man page');

    // 4. The bin, by its installed name.
    assert.equal(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(), pkg.version);

    // 5. serve: SMTP on a loopback port; a message to the default local mailbox lands in its Maildir.
    const h = await spawnHalcyon('', { program: bin });
    try {
      const exe = readlinkSync(`/proc/${h.child.pid}/exe`);
      assert.ok(exe.startsWith(join(prefix, 'lib/node_modules', pkg.name, 'node_modules/')), `runs the package's own Node: ${exe}`);
      await submit(h.port, { from: 'someone@client.test', to: ['postmaster@localhost'], content: message('someone@client.test', ['postmaster@localhost'], 'from the npm install') });
      await waitUntil(() => halcyonMaildir(h.dataDir, 'localhost', 'postmaster').length === 1, 'delivered to postmaster@localhost');
    } finally {
      await h.kill('SIGTERM');
      rmSync(h.dataDir, { recursive: true, force: true });
    }
  } finally {
    mirror.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});

/**
 * test/ops/runtime — Halcyon runs on the Node that `npm ci` installed
 * (node_modules/.bin/node, Node 24), not on whatever `node` is first on PATH
 * (the machines' system Node is 20): the test runner itself, the built bin,
 * and a `sendmail` link to it. The bin is executable and the server's process
 * title is `halcyon` (`pidof halcyon`, as the docs use it).
 *
 * Each bin test puts a fake `node` first on PATH that fails loudly, so a bin
 * that took PATH's node would fail here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, spawnHalcyon } from '../support/halcyon.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PROJECT_NODE = join(REPO, 'node_modules', '.bin', 'node');
const major = (version: string): number => Number(/^v?(\d+)/.exec(version)?.[1]);

/** A directory holding a `node` that is not Node: exits 99 and says so. */
function fakeNodeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-fakenode-'));
  writeFileSync(join(dir, 'node'), '#!/bin/sh\necho "fake node on PATH was run" >&2\nexit 99\n');
  chmodSync(join(dir, 'node'), 0o755);
  return dir;
}

test('the tests run on Node 24 or later (npm test puts the project\'s node first on PATH)', () => {
  assert.ok(major(process.version) >= 24, `running on ${process.version}`);
});

test('the built bin is executable and, as `halcyon` and as a `sendmail` link, runs on the project\'s node, not PATH\'s', () => {
  assert.ok(existsSync(PROJECT_NODE), 'npm ci installs node_modules/.bin/node');
  assert.ok(major(execFileSync(PROJECT_NODE, ['--version'], { encoding: 'utf8' })) >= 24);
  assert.equal(statSync(CLI).mode & 0o111, 0o111, 'dist/src/cli/main.js is executable by everyone');
  const fake = fakeNodeDir();
  try {
    const env = { ...process.env, PATH: `${fake}:/usr/bin:/bin` };
    symlinkSync(CLI, join(fake, 'halcyon'));
    symlinkSync(CLI, join(fake, 'sendmail'));
    const version = spawnSync(join(fake, 'halcyon'), ['--version'], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(version.status, 0, version.stderr);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
    // Invoked as `sendmail`, it is sendmail (its own usage error), so the link's name reached main.js.
    const sendmail = spawnSync(join(fake, 'sendmail'), ['-bv'], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(sendmail.status, 64, sendmail.stderr); // EX_USAGE
    assert.match(sendmail.stderr, /^sendmail: -bv is not supported/);
  } finally {
    rmSync(fake, { recursive: true, force: true });
  }
});

test('without a Node of its own, the bin refuses an old PATH node with a message that says what to do', () => {
  const root = mkdtempSync(join(tmpdir(), 'halcyon-nonode-'));
  const fake = fakeNodeDir();
  try {
    mkdirSync(join(root, 'dist', 'src', 'cli'), { recursive: true });
    const bin = join(root, 'dist', 'src', 'cli', 'main.js');
    copyFileSync(CLI, bin);
    chmodSync(bin, 0o755);
    const r = spawnSync(bin, ['--version'], { env: { ...process.env, PATH: `${fake}:/usr/bin:/bin` }, encoding: 'utf8', timeout: 60_000, cwd: root });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /halcyon: needs Node 24 or later: run npm ci in /);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(fake, { recursive: true, force: true });
  }
});

test('the server started through the bin runs on the project\'s node, with process title `halcyon`', async () => {
  const fake = fakeNodeDir();
  const h = await spawnHalcyon('', { program: CLI, env: { ...process.env, PATH: `${fake}:${process.env.PATH ?? '/usr/bin:/bin'}` } });
  try {
    const pid = h.child.pid!;
    assert.equal(realpathSync(readlinkSync(`/proc/${pid}/exe`)), realpathSync(PROJECT_NODE));
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'halcyon');
    if (existsSync('/usr/bin/pidof') || existsSync('/bin/pidof')) {
      const pids = spawnSync('pidof', ['halcyon'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
      assert.ok(pids.includes(String(pid)), `pidof halcyon: ${pids.join(' ')}; the server is ${pid}`);
    }
  } finally {
    await h.kill('SIGTERM');
    rmSync(fake, { recursive: true, force: true });
    rmSync(h.dataDir, { recursive: true, force: true });
  }
});

/**
 * test/ops/npm-start — `npm start` is a way to run Halcyon a README reader
 * takes: SIGTERM to the pid of `npm start` (what a terminal, a container
 * runtime or a process supervisor signals) must stop Halcyon, not leave it
 * serving behind a dead npm. The start script execs node, and npm forwards
 * the signal to it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/halcyon.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

const refused = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port });
  s.once('connect', () => { s.destroy(); resolve(false); });
  s.once('error', () => resolve(true));
});

test('kill -TERM to the pid of `npm start` stops Halcyon', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-npm-'));
  const port = await freePort();
  const file = join(dir, 'halcyon.toml');
  writeFileSync(file, `hostname = "mx.halcyon.test"\ndata_dir = "${dir}"\nlog_level = "error"\n[smtp]\nlisten = ["127.0.0.1:${port}"]\n[http]\nenabled = false\n`);
  // --ignore-scripts skips prestart (the build: the test runs on the built tree) but still runs start itself.
  // Its own process group, so whatever it started can be cleaned up by the group's id if the test fails.
  const npm = spawn('npm', ['start', '--ignore-scripts', '--', '--config', file], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let err = '';
  npm.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  try {
    for (let i = 0; i < 300 && !/serving/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(err, /serving/, 'Halcyon did not start under npm start');
    assert.equal(await refused(port), false, 'Halcyon serves SMTP');
    npm.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000))]);
    assert.notEqual(code, 'running', 'npm start did not exit after SIGTERM');
    for (let i = 0; i < 100 && !(await refused(port)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await refused(port), true, 'Halcyon still serves after SIGTERM to npm start');
  } finally {
    try { process.kill(-npm.pid!, 'SIGKILL'); } catch { /* the group is gone: everything stopped */ }
    rmSync(dir, { recursive: true, force: true });
  }
});

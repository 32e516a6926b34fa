/**
 * test/ops/postmaster — the defects a postmaster met on a first day, each
 * checked the way a person would see it: read-only commands that create no
 * file (as root too, and `--direct` in an arbitrary directory), `queue list`
 * behind a destination's backoff, a refused connection that is not shown as a
 * reply, a plain `flush` that says what it cannot send, and `config show` on
 * a running server after SIGHUP reporting what is in force.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { logLines, until } from './helpers.js';

interface Entry { message: { id: string }; recipients: { address: string; state: string; next?: { at: number; why: string } }[] }

/** Every file under dir (relative names), with owner and size: what a command may not change. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      out.push(`${p.slice(dir.length)} uid=${st.uid}`);
    }
  };
  walk(dir);
  return out.sort();
}

describe('read-only commands create nothing', () => {
  test('`queue list --direct` in a directory with no queue says so and creates nothing', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'halcyon-nowhere-'));
    try {
      for (const args of [['queue', 'list', '--direct'], ['queue', 'show', '0000000000000000', '--direct'], ['destinations', '--direct'],
        ['queue', 'flush', '--direct'], ['queue', 'hold', '--domain', 'x.test', '--direct']]) {
        const r = await runCli(args, { cwd, env: { HALCYON_CONFIG: '' } });
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /no queue in \.\/var/, args.join(' '));
        assert.doesNotMatch(r.stdout, /Mail queue is empty/);
        assert.deepEqual(readdirSync(cwd), [], `${args.join(' ')} created files`);
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  test('with the server stopped, list/show/destinations leave data_dir exactly as it was (as root: no root-owned file)', async () => {
    const h = await spawnHalcyon('[routes]\n"x.test" = "127.0.0.1:1"\n', { http: true });
    const sent = await runCli(['sendmail', '-C', h.configFile, 'a@x.test'], { input: 'Subject: s\n\nx\n' });
    assert.equal(sent.code, 0, sent.stderr);
    await h.kill('SIGTERM');
    const before = snapshot(h.dataDir);
    try {
      const list = await runCli(['queue', 'list', '--json', '--config', h.configFile]);
      assert.equal(list.code, 0, list.stderr);
      const id = (JSON.parse(list.stdout) as Entry[])[0]!.message.id;
      for (const args of [['queue', 'list'], ['queue', 'show', id], ['destinations'], ['queue', 'list', '--direct']]) {
        const r = await runCli([...args, '--config', h.configFile]);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      assert.deepEqual(snapshot(h.dataDir), before);
    } finally {
      rmSync(h.dataDir, { recursive: true, force: true });
    }
  });
});

describe('a destination in backoff, as the postmaster sees it', () => {
  let h: SpawnedHalcyon;
  let deadPort: number;
  const cli = (...args: string[]) => runCli([...args, '--config', h.configFile]);

  before(async () => {
    deadPort = await freePort(); // nothing listens: connection refused
    h = await spawnHalcyon(`log_level = "info"\n[delivery]\nretry_initial = "1s"\ndestination_backoff = "1h"\n[routes]\n"dead.test" = "127.0.0.1:${deadPort}"\n`,
      { http: true, captureStdout: true });
    const r = await runCli(['sendmail', '-C', h.configFile, '-f', 'a@localhost', 'b@dead.test'], { input: 'Subject: backoff\n\nx\n' });
    assert.equal(r.code, 0, r.stderr);
    await until('the deferral', () => logLines(h).some((l) => l.event === 'delivery' && l.status === 'deferred'));
  });
  after(async () => {
    await h.kill('SIGTERM');
    rmSync(h.dataDir, { recursive: true, force: true });
  });

  test('queue list shows the backoff end, not "next in 0s"', async () => {
    // New mail for a destination in backoff is due at once by its own time; the destination takes no connection for an hour.
    const r = await runCli(['sendmail', '-C', h.configFile, '-f', 'a@localhost', 'c@dead.test'], { input: 'Subject: behind\n\nx\n' });
    assert.equal(r.code, 0, r.stderr);
    const text = (await cli('queue', 'list')).stdout;
    assert.match(text, /queued +<c@dead\.test> +attempts=0 next in (59m|1h00m) \(destination backoff\)/, text);
    assert.match(text, /deferred +<b@dead\.test> +attempts=0 next in (59m|1h00m) \(destination backoff\)/, text);
    assert.doesNotMatch(text, /next in 0s/);
    const json = JSON.parse((await cli('queue', 'list', '--json')).stdout) as Entry[];
    for (const e of json) {
      assert.equal(e.recipients[0]!.next?.why, 'destination backoff');
      assert.ok(e.recipients[0]!.next!.at > Date.now() + 50 * 60_000);
    }
  });

  test('a refused connection is shown as a failed connect, not as something the host said', async () => {
    const text = (await cli('queue', 'list')).stdout;
    assert.match(text, new RegExp(`connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${deadPort} failed: connect failed \\(ECONNREFUSED\\) \\[no reply; recorded as 451 4\\.4\\.1\\]`), text);
    assert.doesNotMatch(text, /said/);
    const id = (JSON.parse((await cli('queue', 'list', '--json')).stdout) as Entry[]).find((e) => e.recipients[0]!.address === 'b@dead.test')!.message.id;
    const show = (await cli('queue', 'show', id)).stdout;
    assert.match(show, /deferred +connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ failed/, show);
  });

  test('plain flush says nothing can go now and why; --force clears the backoff', async () => {
    const plain = await cli('queue', 'flush');
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^0 recipient\(s\) due now/, plain.stdout);
    assert.match(plain.stdout, /2 recipient\(s\) wait for route:127\.0\.0\.1:\d+: destination backoff, (59m|1h00m) left \(--force clears it\)/, plain.stdout);
    const json = JSON.parse((await cli('queue', 'flush', '--json')).stdout) as { flushed: number; blocked: { destination: string; recipients: number }[] };
    assert.equal(json.flushed, 0);
    assert.deepEqual(json.blocked.map((b) => b.recipients), [2]);
    const forced = JSON.parse((await cli('queue', 'flush', '--force', '--json')).stdout) as { flushed: number; reset: string[]; blocked: unknown[] };
    assert.deepEqual([forced.flushed, forced.reset.length, forced.blocked.length], [2, 1, 0]);
    // And it is really tried again: a second connection-level deferral is logged.
    await until('the retry after --force', () => logLines(h).filter((l) => l.event === 'delivery' && l.status === 'deferred').length >= 2);
  });
});

describe('config show on a running server', () => {
  test('after SIGHUP it reports what is in force: reloadable changes applied, restart-only ones at their running values', async () => {
    const h = await spawnHalcyon('log_level = "info"\n[smtp]\nmax_recipients = 5\n[delivery]\nretry_initial = "5m"\n', { http: true, captureStdout: true });
    try {
      const original = readFileSync(h.configFile, 'utf8');
      writeFileSync(h.configFile, original.replace('max_recipients = 5', 'max_recipients = 2').replace('retry_initial = "5m"', 'retry_initial = "7m"')
        .replace('hostname = "mx.halcyon.test"', 'hostname = "renamed.halcyon.test"'));
      h.child.kill('SIGHUP');
      const reloaded = await until('the reload', () => logLines(h).find((l) => l.event === 'reloaded'));
      assert.deepEqual(reloaded.restart_needed, ['delivery.retry_initial', 'hostname']);
      const shown = await runCli(['config', 'show', '--json', '--config', h.configFile]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stderr, /in force on the running server/);
      const cfg = JSON.parse(shown.stdout) as { smtp: { max_recipients: number }; delivery: { retry_initial: string }; hostname: string };
      assert.equal(cfg.smtp.max_recipients, 2, 'a reloadable change is in force');
      assert.equal(cfg.delivery.retry_initial, '5m', 'a restart-only change is not in force until restart');
      assert.equal(cfg.hostname, 'mx.halcyon.test');
      // The file's own view is still there when asked for.
      const file = JSON.parse((await runCli(['config', 'show', '--json', '--file', '--config', h.configFile])).stdout) as typeof cfg;
      assert.equal(file.hostname, 'renamed.halcyon.test');
      // --changed: only what differs from the defaults (postconf -n).
      const changed = JSON.parse((await runCli(['config', 'show', '--changed', '--json', '--config', h.configFile])).stdout) as Record<string, unknown>;
      assert.deepEqual(changed.smtp, { listen: [`127.0.0.1:${h.port}`], max_recipients: 2 });
      assert.equal(changed.delivery, undefined);
      assert.equal(changed.hostname, 'mx.halcyon.test');
      assert.equal(changed.log_level, undefined, 'info is the default');
    } finally {
      await h.kill('SIGTERM');
      rmSync(h.dataDir, { recursive: true, force: true });
    }
  });
});

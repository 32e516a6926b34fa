/**
 * test/ops/mailq — Postfix's names for what postmasters type: `halcyon
 * mailq` and the bin run through a link named `mailq` print the running
 * server's queue in postqueue -p's layout (a deferred message's recipients
 * under the connect failure they got), and `halcyon config show KEY` prints
 * one setting like `postconf KEY`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, freePort, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { until } from './helpers.js';

let h: SpawnedHalcyon;
let dead: number;
const links = mkdtempSync(join(tmpdir(), 'halcyon-mailq-'));

before(async () => {
  dead = await freePort();
  h = await spawnHalcyon(`[delivery]\nretry_initial = "1h"\ndestination_backoff = "1h"\n[routes]\n"dead.test" = "127.0.0.1:${dead}"\n`, { http: true, readyTimeoutMs: 60_000 });
});
after(async () => {
  await h.kill('SIGTERM');
  rmSync(links, { recursive: true, force: true });
});

test('mailq, as a subcommand and as a link name, prints the queue as postqueue -p does', async () => {
  assert.equal((await runCli(['mailq', '--config', h.configFile])).stdout, 'Mail queue is empty\n');
  const sent = await runCli(['sendmail', '-C', h.configFile, '-f', 'ann@example.test', 'b1@dead.test', 'b2@dead.test'], { input: 'Subject: waits\n\nhello\n' });
  assert.equal(sent.code, 0, sent.stderr);
  await until('both recipients deferred', async () => {
    const out = (await runCli(['queue', 'list', '--json', '--config', h.configFile])).stdout;
    const list = JSON.parse(out) as { recipients: { state: string }[] }[];
    return list.length === 1 && list[0]!.recipients.every((r) => r.state === 'deferred');
  });
  symlinkSync(CLI, join(links, 'mailq'));
  for (const [how, r] of [
    ['halcyon mailq', await runCli(['mailq', '--config', h.configFile])],
    ['a link named mailq', await runCli([], { script: join(links, 'mailq'), env: { HALCYON_CONFIG: h.configFile } })],
  ] as const) {
    assert.equal(r.code, 0, `${how}: ${r.stderr}`);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], '----Queue ID----- --Size-- ----Arrival Time--- -Sender/Recipient-------', how);
    assert.match(lines[1]!, /^[0-9A-Z]{16}  +\d+ [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ann@example\.test$/, how);
    assert.match(lines[2]!, new RegExp(`^ {8}\\(connect to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${dead} failed: .*\\)$`), how);
    assert.deepEqual(lines.slice(3, 5), [`${' '.repeat(47)}b1@dead.test`, `${' '.repeat(47)}b2@dead.test`], how);
    assert.match(r.stdout, /\n\n-- 0 Kbytes in 1 Request\.\n$/, how);
  }
});

test('config show KEY prints that setting like postconf KEY; --value only its value; an unknown key fails', async () => {
  const one = await runCli(['config', 'show', 'delivery.retry_initial', '--config', h.configFile]);
  assert.equal(one.stdout, 'delivery.retry_initial = "1h"\n');
  assert.equal((await runCli(['config', 'show', '--value', 'delivery.retry_initial', '--config', h.configFile])).stdout, '1h\n');
  const bad = await runCli(['config', 'show', 'delivery.nope', '--config', h.configFile]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /delivery\.nope: no such setting/);
});

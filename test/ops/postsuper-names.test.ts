/**
 * test/ops/postsuper-names — what postmasters type, Postfix's way: `queue
 * bounce --domain` and `--state` select messages as `queue delete` does;
 * `queue bounce -` and `queue delete -` read queue ids from stdin, one per
 * line (postsuper -d -), so `mailq` output cut to its first column can be
 * piped in, `*`/`!` marks and all. Checked with `mailq` on a stopped
 * server's data_dir (sendmail queues there), where nothing is delivered
 * while the test looks: each message waits until the command acts on it.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';

let h: SpawnedHalcyon;
const cli = (args: string[], input?: string) => runCli([...args, '--config', h.configFile], { input });

/** Queues one message per recipient, from `from`; returns their ids in that order. */
async function queue(from: string, rcpts: string[]): Promise<string[]> {
  for (const to of rcpts) {
    const r = await runCli(['sendmail', '-C', h.configFile, '-f', from, to], { input: `Subject: to ${to}\n\nx\n` });
    assert.equal(r.code, 0, r.stderr);
  }
  const list = JSON.parse((await cli(['queue', 'list', '--json'])).stdout) as { message: { id: string; sender: string }; recipients: { address: string }[] }[];
  return rcpts.map((to) => list.find((e) => e.message.sender === from && e.recipients.some((r) => r.address === to))!.message.id);
}

const mailqIds = async (): Promise<string[]> => [...(await cli(['mailq'])).stdout.matchAll(/^([0-9A-Z]{16})[*! ]/gm)].map((m) => m[1]!);

before(async () => {
  const dead = await freePort();
  h = await spawnHalcyon(`[delivery]\nretry_initial = "1h"\ndestination_backoff = "1h"\n[routes]\n"dead.test" = "127.0.0.1:${dead}"\n"gone.test" = "127.0.0.1:${dead}"\n`,
    { http: true, readyTimeoutMs: 60_000 });
  await h.kill('SIGTERM');
});

test('queue bounce --domain bounces every message with a recipient there, and only those', async () => {
  const [gone] = await queue('a@src.test', ['x@gone.test']);
  const [stays] = await queue('b@src.test', ['y@dead.test']);
  const r = await cli(['queue', 'bounce', '--domain', 'gone.test']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^1 recipient\(s\) bounced/);
  const left = await mailqIds();
  assert.ok(!left.includes(gone!), 'the gone.test message left the queue');
  assert.ok(left.includes(stays!), 'the dead.test message stays');
});

test('queue bounce --state queued, and --domain with ids refused', async () => {
  assert.equal((await cli(['queue', 'bounce', '--domain', 'dead.test', '0123456789ABCDEF'])).code, 2);
  await queue('c@src.test', ['z1@dead.test', 'z2@dead.test']);
  const r = await cli(['queue', 'bounce', '--state', 'queued', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((JSON.parse(r.stdout) as { bounced: number }).bounced >= 3);
  assert.deepEqual(await mailqIds(), []);
});

test('queue delete - and queue bounce - read ids from stdin, as postsuper -d - does (mailq\'s first column piped in)', async () => {
  const ids = await queue('d@src.test', ['p1@dead.test', 'p2@dead.test', 'p3@dead.test']);
  // The ids as `mailq | awk '{print $1}'` gives them: with a mark, after other words, blank lines between.
  const del = await cli(['queue', 'delete', '-y', '-'], `${ids[0]}!\n\n${ids[1]} trailing words\n`);
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stdout, /^2 message\(s\) deleted/);
  assert.deepEqual(await mailqIds(), [ids[2]]);
  assert.equal((await cli(['queue', 'delete', '-'], `${ids[2]}\n`)).code, 2, 'no question can be asked on stdin: -y is required');
  const bounced = await cli(['queue', 'bounce', '-'], `${ids[2]}*\n`);
  assert.equal(bounced.code, 0, bounced.stderr);
  assert.match(bounced.stdout, /^1 recipient\(s\) bounced/);
  assert.deepEqual(await mailqIds(), []);
  const bad = await cli(['queue', 'bounce', '-'], 'not-an-id\n');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /not a queue id: not-an-id/);
});

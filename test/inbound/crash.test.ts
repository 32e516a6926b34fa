/**
 * End-to-end crash durability of the inbound path: the real `halcyon serve`
 * binary takes a stream of messages over SMTP from one sequential client and
 * is SIGKILLed mid-stream after about 200 acknowledgements. Restarted on the
 * same data_dir, it must list (via `queue list --json`) every message it had
 * answered "250 2.0.0 Ok: queued as ID" for, with its recipient, and the
 * stored body must end with exactly the content the client sent.
 *
 * A message in flight when the kill lands may or may not be there; that is
 * allowed (no 250 was given). SIGKILL keeps the page cache, so this proves the
 * 250-after-commit ordering, not the disk's honesty (test/queue/crash.test.ts
 * covers the store alone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import { queueList, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { RawSmtpClient, queuedId } from '../support/smtp-client.js';

const KILL_AFTER = 200;
const MAX_MESSAGES = 3_000;
const MAX_MS = 20_000;
const CONFIG = `
[routes]
"example.test" = "127.0.0.1:9"
`;

/** Sends messages one after another until the server dies (or the bounds hit); returns acknowledged id → content. */
async function sendUntilKilled(h: SpawnedHalcyon): Promise<{ acked: Map<string, string>; killedAt: number }> {
  const acked = new Map<string, string>();
  const c = await RawSmtpClient.connect(h.port);
  assert.equal((await c.read()).code, 220);
  await c.expect('EHLO crash.test', 250);
  let kill: Promise<unknown> | undefined;
  let killedAt = -1;
  const deadline = Date.now() + MAX_MS;
  for (let seq = 0; seq < MAX_MESSAGES && Date.now() < deadline && !c.closed; seq++) {
    const content = `Subject: crash ${seq}\r\nX-Seq: ${seq}\r\n\r\nmessage ${seq} ${'z'.repeat(seq % 97)}\r\n`;
    // PIPELINING was offered: envelope in one write, then the content.
    c.write(`MAIL FROM:<sender@client.test>\r\nRCPT TO:<rcpt${seq}@example.test>\r\nDATA\r\n`);
    const env = [await c.readOrClose(), await c.readOrClose(), await c.readOrClose()];
    if (env.some((r) => r === undefined)) break;
    assert.deepEqual(env.map((r) => r!.code), [250, 250, 354]);
    c.write(`${content}.\r\n`);
    const done = await c.readOrClose();
    if (!done) break;
    const id = queuedId(done);
    assert.ok(id, `message ${seq}: ${done.code} ${done.lines.join(' ')}`);
    acked.set(id, content);
    if (acked.size === KILL_AFTER) {
      killedAt = seq;
      kill = h.kill('SIGKILL');
    }
  }
  c.close();
  await kill;
  return { acked, killedAt };
}

test('every message acknowledged before a SIGKILL is in the queue after restart, body intact', async () => {
  const first = await spawnHalcyon(CONFIG);
  const dataDir = first.dataDir;
  let second: SpawnedHalcyon | undefined;
  try {
    const { acked, killedAt } = await sendUntilKilled(first);
    assert.ok(killedAt >= 0 && acked.size >= KILL_AFTER, `the server was killed after ${acked.size} acknowledgements`);
    const exit = await first.kill('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL', 'the first server died by SIGKILL, not on its own');

    second = await spawnHalcyon(CONFIG, { dataDir });
    const listed = await queueList(second.configFile);
    const byId = new Map(listed.map((e) => [e.message.id, e]));
    const missing = [...acked.keys()].filter((id) => !byId.has(id));
    assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged messages lost`);
    for (const [id, content] of acked) {
      const seq = /X-Seq: (\d+)/.exec(content)![1];
      assert.deepEqual(byId.get(id)!.recipients.map((r) => r.address), [`rcpt${seq}@example.test`]);
    }
    assert.ok(listed.length <= acked.size + 1, `at most the one in-flight message beyond those acknowledged (${listed.length})`);

    // Bodies: read through the Store (WAL lets us read while the server runs).
    const store = await openSqliteQueue({ dataDir });
    try {
      for (const [id, content] of acked) {
        const body = await store.messages.getBody(id);
        const want = Buffer.from(content, 'latin1');
        assert.deepEqual(body.subarray(body.length - want.length), want, `body of ${id}`);
        assert.match(body.toString('latin1', 0, 10), /^Received: /);
      }
    } finally {
      await store.close();
    }

    // The restarted server takes mail again.
    const c = await RawSmtpClient.connect(second.port);
    await c.read();
    const r = await c.send({ from: 'after@client.test', to: ['again@example.test'], content: 'Subject: after restart\r\n\r\nok\r\n' });
    assert.equal(r.code, 250);
    c.close();
  } finally {
    await first.kill('SIGKILL');
    if (second) await second.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});

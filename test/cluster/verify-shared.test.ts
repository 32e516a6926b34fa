/**
 * Recipient verification on two nodes sharing one PostgreSQL queue: what one
 * node's probe learned answers the other node's RCPT without a probe (the
 * remote counts its RCPTs), and a dead host that one node's probe put into
 * backoff gets no connection from the other node's RCPTs (a listener counts
 * the connections it accepts). Skips with the reason when PostgreSQL does
 * not answer (fails under HALCYON_REQUIRE_INTEROP=1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';
import { startRemote } from '../support/remote-smtp.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const skip = await pgUnavailable();

async function rcpts(app: TestApp, addresses: readonly string[]): Promise<number[]> {
  const c = await RawSmtpClient.connect(app.port);
  try {
    await c.read();
    await c.expect('EHLO client.test', 250);
    await c.expect('MAIL FROM:<alice@client.test>', 250);
    const codes: number[] = [];
    for (const a of addresses) codes.push((await c.cmd(`RCPT TO:<${a}>`, 15_000)).code);
    return codes;
  } finally {
    c.close();
  }
}

test('two nodes share the verification cache and the dead host\'s backoff', { skip, timeout: 90_000 }, async (t) => {
  const db = await createTestDatabase();
  t.after(() => db.drop());
  const remote = await startRemote({ rcpt: (r) => (r.startsWith('ghost@') ? '550 5.1.1 <ghost@sink.test> no such user' : undefined) });
  t.after(() => remote.close());
  let accepts = 0;
  const dead = net.createServer((s) => { accepts++; s.destroy(); });
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => dead.close(() => r())));
  const deadPort = (dead.address() as net.AddressInfo).port;

  const node = (id: string) => startTestApp({
    node_id: id,
    queue: { backend: 'postgres', url: db.url },
    routes: {
      'sink.test': { hosts: [`127.0.0.1:${remote.port}`], verify: 'probe', tls: 'none' },
      'dead.test': { hosts: [`127.0.0.1:${deadPort}`], verify: 'probe', tls: 'none' },
    },
    delivery: { destination_backoff: '1h' },
  });
  const a = await node('node-a');
  t.after(() => a.stop());
  const b = await node('node-b');
  t.after(() => b.stop());
  const probesAtRemote = (): number => remote.commands.filter((c) => c.line === 'RCPT TO:<ghost@sink.test>').length;

  assert.deepEqual(await rcpts(a, ['ghost@sink.test']), [550]);
  assert.equal(probesAtRemote(), 1);
  assert.deepEqual(await rcpts(b, ['ghost@sink.test', 'ghost@sink.test']), [550, 550], 'node B answers from what node A learned');
  assert.equal(probesAtRemote(), 1, 'no probe from node B');
  assert.equal(b.app.verifier.stats.probes, 0);

  assert.deepEqual(await rcpts(a, ['x@dead.test']), [450]);
  assert.equal(accepts, 1);
  const many = Array.from({ length: 20 }, (_, i) => `u${i}@dead.test`);
  assert.deepEqual(await rcpts(b, many), many.map(() => 450));
  assert.equal(accepts, 1, 'node B\'s 20 RCPTs opened no connection to the host node A found dead');
  assert.equal(remote.transactions.length, 0, 'probes never sent DATA');
  t.diagnostic(`node B: 20 RCPTs to the dead host, ${accepts - 1} connections; ghost@ probed ${probesAtRemote()} time(s) for 3 RCPTs on 2 nodes`);
});

/**
 * Two `halcyon serve` nodes on one PostgreSQL queue share a source address's
 * warm-up (queue/warmup): with a cap of 5 a day on source 127.0.0.2, twelve
 * messages handed to either node reach the remote five times, all from
 * 127.0.0.2, and the other seven wait in the queue for the next UTC day —
 * none failed, none tried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRemote } from '../support/remote-smtp.js';
import { message, submit } from '../support/postfix.js';
import { pgUnavailable } from '../support/postgres.js';
import { queueList } from '../support/halcyon.js';
import { until } from '../ops/helpers.js';
import { DAY_MS } from '../../src/queue/warmup.js';
import { REMOTE, startCluster } from './nodes.js';

test('two nodes share a source\'s warm-up cap; what is over it waits for the next UTC day', { timeout: 120_000, skip: await pgUnavailable() }, async (t) => {
  const remote = await startRemote();
  const cluster = await startCluster(2, remote.port, {}, {
    log_level: 'info',
    egress: { sources: [{ name: 'a', address: '127.0.0.2', warmup: ['5/day'] }], pools: [{ name: 'main', sources: [{ source: 'a' }] }] },
  });
  try {
    for (let i = 0; i < 12; i++) {
      const to = `u${i}@${REMOTE}`;
      await submit(cluster.nodes[i % 2]!.port, { from: 'sender@client.test', to: [to], content: message('sender@client.test', [to], `warm-up ${i}`) });
    }
    const tomorrow = (Math.floor(Date.now() / DAY_MS) + 1) * DAY_MS;
    const waiting = await until('seven recipients waiting for the next UTC day', async () => {
      const rs = (await queueList(cluster.nodes[1]!.configFile)).flatMap((e) => e.recipients).filter((r) => r.state !== 'delivered');
      return rs.length === 7 && rs.every((r) => r.nextAttemptAt === tomorrow) ? rs : undefined;
    }, 400);
    assert.ok(waiting.every((r) => r.attempts === 0 && r.state !== 'failed'), 'no attempt counted, nothing failed');
    assert.equal(remote.transactions.length, 5, 'the cap held for the cluster');
    assert.deepEqual([...new Set(remote.connections.map((c) => c.remoteAddress))], ['127.0.0.2']);
    const sent = cluster.nodes.map((n) => n.stdout().split('"status":"sent"').length - 1);
    const waits = cluster.nodes.map((n) => n.stdout().split('"event":"warmup_').length - 1);
    t.diagnostic(`sent by node-0: ${sent[0]}, node-1: ${sent[1]}; warm-up lines node-0: ${waits[0]}, node-1: ${waits[1]}`);
    assert.equal(sent[0]! + sent[1]!, 5);
  } finally {
    await cluster.stop();
    await remote.close();
  }
});

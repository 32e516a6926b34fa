/**
 * The injection API's Idempotency-Key on two `halcyon serve` nodes sharing
 * one PostgreSQL queue (issue #24): the same key sent to both nodes at once,
 * three times each, queues one message and every answer is the first one;
 * sent again later to either node it queues nothing; another key queues
 * another message. The remote refuses every RCPT with a 4xx, so what was
 * queued stays in the queue to be counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startRemote } from '../support/remote-smtp.js';
import { pgUnavailable, createTestDatabase } from '../support/postgres.js';
import { spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { clusterToml, REMOTE } from './nodes.js';

async function inject(port: number, key: string, to: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/api/inject/v1`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: JSON.stringify({ from: 'app@sender.test', recipients: [to], tenant: 'acme', content: { subject: 'once', text: 'Grüße ✓' } }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function messagesTo(port: number, address: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/api/queue?q=${encodeURIComponent(address)}`);
  return ((await res.json()) as unknown[]).length;
}

test('one Idempotency-Key on two nodes of one PostgreSQL queue: one message', { timeout: 120_000, skip: await pgUnavailable() }, async () => {
  const remote = await startRemote({ extensions: { enhancedStatusCodes: true }, rcpt: (r) => `451 4.3.0 <${r}>: try later` });
  const db = await createTestDatabase();
  const nodes: SpawnedHalcyon[] = [];
  try {
    for (const n of [0, 1]) nodes.push(await spawnHalcyon(clusterToml(db.url, `node-${n}`, remote.port), { http: true }));
    const [a, b] = nodes.map((n) => n.httpPort!) as [number, number];
    const to = `idem@${REMOTE}`;
    const answers = await Promise.all([a, b, a, b, a, b].map((port) => inject(port, 'cluster-key-1', to)));
    assert.ok(answers.every((x) => x.status === 201), answers.map((x) => `${x.status} ${JSON.stringify(x.json)}`).join('\n'));
    for (const x of answers) assert.deepEqual(x.json, answers[0]!.json, 'every node answers with the first response');
    assert.equal(await messagesTo(a, to), 1);
    assert.equal(await messagesTo(b, to), 1, 'the other node sees the same one message');

    const later = await inject(b, 'cluster-key-1', to);
    assert.deepEqual(later.json, answers[0]!.json);
    assert.equal((await inject(a, 'cluster-key-2', to)).status, 201);
    assert.equal(await messagesTo(b, to), 2, 'another key, another message');
  } finally {
    for (const n of nodes) {
      await n.kill('SIGTERM');
      rmSync(n.dataDir, { recursive: true, force: true });
    }
    await db.drop();
    await remote.close();
  }
});

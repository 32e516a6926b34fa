/**
 * The admin API while the queue cannot be used (issue 15): a queue whose
 * storage failed (the SQLite queue thread gone) and a queue database that
 * cannot be reached (PostgreSQL behind a TCP relay the test cuts) answer
 * every queue route with 503 and a Retry-After, as /api/health does — not
 * 500, which would say the server is broken rather than "try again later".
 * With the database back, the node answers 200 again by itself. Real sockets;
 * the PostgreSQL half skips without a PostgreSQL (not under CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp } from '../support/halcyon.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';
import { until } from './helpers.js';
import { tcpRelay } from '../support/tcp-relay.js';

interface Answer { readonly status: number; readonly retryAfter: string | null; readonly body: { error?: string; message?: string } }

async function call(port: number, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method, signal: AbortSignal.timeout(20_000),
    ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() as Answer['body'] };
}

/** What an operator (or the CLI, or the dashboard) asks of the queue. */
const QUEUE_CALLS: readonly [string, string, unknown?][] = [
  ['GET', '/api/queue'],
  ['GET', '/api/queue/0000000000000000'],
  ['GET', '/api/destinations'],
  ['POST', '/api/queue/flush', {}],
  ['POST', '/api/messages', { from: 'a@localhost', to: ['postmaster@localhost'], content: 'Subject: x\r\n\r\nx\r\n' }],
  ['GET', '/api/health'],
];

async function assertAll503(port: number, message: RegExp): Promise<void> {
  for (const [method, path, body] of QUEUE_CALLS) {
    const a = await call(port, method, path, body);
    assert.equal(a.status, 503, `${method} ${path}: ${a.status} ${JSON.stringify(a.body)}`);
    assert.equal(a.retryAfter, '10', `${method} ${path}: Retry-After`);
    assert.equal(a.body.error, 'unavailable');
    assert.match(a.body.message ?? '', message, `${method} ${path}`);
  }
}

test('a queue whose storage failed: every queue route answers 503 with Retry-After, not 500', { timeout: 30_000 }, async () => {
  const h = await startTestApp({ http: { enabled: true, listen: '127.0.0.1:0' } });
  try {
    const port = Number(h.app.httpAddress!.split(':').pop());
    assert.equal((await call(port, 'GET', '/api/queue')).status, 200);
    // The queue thread gone: every later queue call rejects with HAL_ERR_QUEUE_FAILED (queue/sqlite/worker-store).
    await (h.app.store as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await assertAll503(port, /queue storage failed/);
  } finally {
    await h.stop();
  }
});

const pgSkip = await pgUnavailable();

test('a queue database that cannot be reached: 503 with Retry-After; 200 again when it is back', { skip: pgSkip, timeout: 90_000 }, async () => {
  const db = await createTestDatabase();
  const target = new URL(db.url);
  const r = await tcpRelay({ host: target.hostname, port: Number(target.port || 5432) });
  const viaRelay = new URL(db.url);
  viaRelay.port = String(r.port);
  let h: Awaited<ReturnType<typeof startTestApp>> | undefined;
  try {
    h = await startTestApp({ http: { enabled: true, listen: '127.0.0.1:0' }, queue: { backend: 'postgres', url: viaRelay.toString() } });
    const port = Number(h.app.httpAddress!.split(':').pop());
    assert.equal((await call(port, 'GET', '/api/queue')).status, 200);
    await r.cut();
    await assertAll503(port, /queue database unreachable/);
    await r.restore();
    // The node's probe finds the database again (1 s, 2 s, 4 s, 8 s, then every 10 s): no restart, no operator.
    await until('health 200 again', async () => (await call(port, 'GET', '/api/health')).status === 200, 600);
    assert.equal((await call(port, 'GET', '/api/queue')).status, 200);
    assert.equal((await call(port, 'GET', '/api/destinations')).status, 200);
  } finally {
    await h?.stop();
    await r.close();
    await db.drop();
  }
});

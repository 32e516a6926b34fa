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
import net from 'node:net';
import { startTestApp } from '../support/halcyon.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';
import { until } from './helpers.js';

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

/** A TCP relay to PostgreSQL that the test can cut (refusing and dropping connections) and restore on the same port. */
async function relay(to: { host: string; port: number }): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = () => new Promise<void>((resolve, reject) => {
    const s = net.createServer((client) => {
      const upstream = net.connect(to);
      for (const sock of [client, upstream]) {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => { port = (s.address() as net.AddressInfo).port; server = s; resolve(); });
  });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  await listen();
  return { port, cut, restore: listen, close: cut };
}

const pgSkip = await pgUnavailable();

test('a queue database that cannot be reached: 503 with Retry-After; 200 again when it is back', { skip: pgSkip, timeout: 90_000 }, async () => {
  const db = await createTestDatabase();
  const target = new URL(db.url);
  const r = await relay({ host: target.hostname, port: Number(target.port || 5432) });
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

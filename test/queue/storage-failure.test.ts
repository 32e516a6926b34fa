/**
 * A queue whose storage breaks under a running server (issue 10, item 4, the
 * run-time half): most of queue.db overwritten while `serve` runs, with a
 * queue larger than SQLite's page cache so the damage is really read. End of
 * data answers 451 4.3.0 (not 452: the disk is not full), and once the
 * server knows, MAIL FROM does; the log names the
 * file and `halcyon queue check` once, /api/health answers 503, and SIGTERM
 * still stops the server. Also: a queue thread that dies settles every call.
 * The compiled CLI and real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openSqliteQueue } from '../../src/queue/sqlite/store.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { spawnHalcyon, startTestApp } from '../support/halcyon.js';

/** More than SQLite's default page cache (~2 MB): bodies just under the 16 KiB spool threshold stay in the file. */
const N = 300;

async function fill(dataDir: string): Promise<void> {
  const store = await openSqliteQueue({ dataDir });
  const line = 'a line of a body that stays inside queue.db rather than a spool segment\r\n';
  const body = (i: number) => Buffer.from(`Subject: m${i}\r\n\r\n${line.repeat(Math.floor(15_000 / line.length))}`);
  await Promise.all(Array.from({ length: N }, (_, i) => store.messages.enqueue({
    sender: `s${i}@src.test`, params: { smtputf8: false }, receivedAt: Date.now(),
    trace: { clientIp: '127.0.0.1', clientHelo: 'c.test', protocol: 'ESMTP' },
    body: body(i), recipients: [{ address: `r${i}@dest.test`, destination: 'dest.test' }],
  })));
  await store.close();
}

/** Every page but the first (which holds the header and the schema) becomes garbage. */
function overwrite(db: string): number {
  const pages = Math.floor(statSync(db).size / 4096);
  const fd = openSync(db, 'r+');
  for (let p = 1; p < pages; p++) writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, p * 4096);
  closeSync(fd);
  return pages;
}

test('queue.db overwritten under a running server: 451 4.3.0 (end of data, then MAIL FROM), logged once, health 503, SIGTERM stops it', { timeout: 90_000 }, async () => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-broken-'));
  await fill(dataDir);
  // The route goes nowhere that answers: what is claimed is deferred, the queue stays big.
  const h = await spawnHalcyon('log_level = "info"\n[routes]\n"dest.test" = "127.0.0.1:9"\n', { dataDir, http: true, captureStdout: true });
  try {
    const pages = overwrite(join(dataDir, 'queue', 'queue.db'));
    assert.ok(pages > 500, `a queue larger than the page cache (${pages} pages)`);
    const api = (path: string) => fetch(`http://127.0.0.1:${h.httpPort}${path}`, { signal: AbortSignal.timeout(20_000) });

    // Reads that cannot come from the cache: the whole list, then a message the size of the others.
    const list = await api('/api/queue');
    assert.notEqual(list.status, 200, 'a damaged queue is not listed as if whole');

    const c = await RawSmtpClient.connect(h.port);
    assert.equal((await c.read()).code, 220);
    await c.expect('EHLO client.test', 250);
    // A transaction's refusal: at MAIL FROM once the server knows of the damage, else at end of data.
    const attempt = async (subject: string) => {
      const mail = await c.cmd('MAIL FROM:<a@src.test>');
      if (mail.code !== 250) return mail;
      await c.expect('RCPT TO:<b@dest.test>', 250);
      await c.expect('DATA', 354);
      c.write(`Subject: ${subject}\r\n\r\n${'y'.repeat(70).concat('\r\n').repeat(200)}`);
      return c.cmd('.');
    };
    let reply = await attempt('x');
    // The first write may still land in the WAL; the ones after meet the damage the server now knows of.
    for (let i = 0; i < 3 && reply.code === 250; i++) reply = await attempt(String(i));
    assert.equal(reply.code, 451, `refusal: ${reply.code} ${reply.lines.join(' ')}`);
    assert.equal(reply.enhanced, '4.3.0');
    // Known now: the next transaction is refused at once, before any data.
    const next = await c.cmd('MAIL FROM:<a@src.test>');
    assert.equal(next.code, 451, `MAIL FROM on a failed queue: ${next.code} ${next.lines.join(' ')}`);
    assert.equal(next.enhanced, '4.3.0');
    await c.cmd('QUIT').catch(() => undefined);

    const health = await api('/api/health');
    assert.equal(health.status, 503);
    assert.match(await health.text(), /queue check/);

    const failedLines = h.stdout().split('\n').filter((l) => l.includes('"queue_storage_failed"'));
    assert.equal(failedLines.length, 1, `logged once: ${failedLines.join('\n')}`);
    assert.ok(failedLines[0]!.includes(join(dataDir, 'queue', 'queue.db')), 'names the file');
    assert.match(failedLines[0]!, /halcyon queue check/);
  } finally {
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([h.kill('SIGTERM'), new Promise<'hung'>((r) => { timer = setTimeout(() => r('hung'), 40_000); })]);
    clearTimeout(timer);
    if (exit === 'hung') h.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    assert.notEqual(exit, 'hung', 'SIGTERM stops a server whose queue is broken');
  }
});

test('a queue thread that dies: every later call rejects with HAL_ERR_QUEUE_FAILED; stop still stops', { timeout: 30_000 }, async () => {
  const h = await startTestApp();
  try {
    const store = h.app.store as unknown as { worker: { terminate(): Promise<number> } };
    await store.worker.terminate();
    await assert.rejects(h.app.store.recipients.counts(), { code: 'HAL_ERR_QUEUE_FAILED' });
    await assert.rejects(h.app.store.recipients.listMessages({}), { code: 'HAL_ERR_QUEUE_FAILED' });
    const c = await RawSmtpClient.connect(h.port);
    assert.equal((await c.read()).code, 220);
    await c.expect('EHLO client.test', 250);
    // The queue is known to be failed: refused at MAIL FROM, before any data.
    const reply = await c.cmd('MAIL FROM:<a@src.test>');
    assert.equal(reply.code, 451, `${reply.code} ${reply.lines.join(' ')}`);
    assert.equal(reply.enhanced, '4.3.0');
    await c.cmd('QUIT').catch(() => undefined);
  } finally {
    await h.stop();
  }
});

/**
 * SMTP sessions on worker threads (`[server] workers = 2`, decision 0017),
 * over real sockets on loopback: Postfix's smtp-source → Halcyon → Postfix's
 * smtp-sink, every accepted message delivered exactly once and connections
 * taken by both workers; the node's connection limit held across them; a
 * reload reaching both; a worker that dies losing none of the mail it
 * answered 250 to, and started again; TLS, AUTH, DKIM signing, DNSBL,
 * the message rate and the queue's health working in (or across) workers;
 * their log lines reaching the app's log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HalcyonError } from '../../src/errors.js';
import { hashPassword } from '../../src/inbound/auth.js';
import { pino } from 'pino';
import { haveTool, runCli, startTestApp, type TestApp } from '../support/halcyon.js';
import { startDnsServer } from '../support/dns-server.js';
import { freeLoopbackPort, message, submit, waitUntil } from '../support/postfix.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';

const SMTP_SOURCE = '/usr/sbin/smtp-source';
const SMTP_SINK = '/usr/sbin/smtp-sink';
const SWAKS = '/usr/bin/swaks';

/** The connections each worker took, from /metrics (halcyon_session_worker_connections_total). */
async function perWorker(t: TestApp): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await t.app.metrics.text()).matchAll(/^halcyon_session_worker_connections_total\{worker="(\d+)"[^}]*\} (\d+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** Every file under `dir`, recursively (smtp-sink -d makes a directory per hour). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test('workers = 2: smtp-source → halcyon → smtp-sink, each of 400 messages delivered once, connections on both workers', async (tc) => {
  if (!haveTool(tc, existsSync(SMTP_SOURCE) && existsSync(SMTP_SINK), 'smtp-source and smtp-sink (postfix)')) return;
  const dumps = mkdtempSync(join(tmpdir(), 'halcyon-sink-'));
  chmodSync(dumps, 0o777); // smtp-sink writes as nobody
  const sinkPort = await freeLoopbackPort();
  const sink = spawn(SMTP_SINK, ['-u', 'nobody', '-d', `${dumps}/%H/`, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
  const t = await startTestApp({ server: { workers: 2 }, routes: { 'example.test': `127.0.0.1:${sinkPort}` } }, { scheduler: true });
  try {
    const res = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(SMTP_SOURCE, ['-s', '20', '-m', '400', '-l', '1024', '-f', 'sender@client.test', '-t', 'rcpt@example.test', `127.0.0.1:${t.port}`],
        { timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, out: stdout + stderr }));
    });
    assert.equal(res.code, 0, `smtp-source failed:\n${res.out}`);
    const text = await t.app.metrics.text();
    assert.match(text, /^halcyon_messages_accepted_total\{[^}]*\} 400$/m);
    await waitUntil(async () => (await t.app.store.recipients.counts()).messages === 0 && filesUnder(dumps).length >= 400, 'the queue to empty into smtp-sink', 120_000);
    // One dump per transaction; each carries Halcyon's Received header with its queue id: 400 files, 400 ids.
    const ids = filesUnder(dumps).map((f) => /by mx\.halcyon\.test \(Halcyon\) with \S+ id ([0-9A-Z]{16})/.exec(readFileSync(f, 'latin1'))?.[1]);
    assert.equal(ids.length, 400, 'smtp-sink got exactly 400 messages');
    assert.equal(new Set(ids.filter((id) => id !== undefined)).size, 400, 'each a different accepted message');
    const workers = await perWorker(t);
    assert.ok((workers.get('1') ?? 0) > 0 && (workers.get('2') ?? 0) > 0, `connections on both workers: ${JSON.stringify([...workers])}`);
    assert.equal((workers.get('1') ?? 0) + (workers.get('2') ?? 0), 400);
  } finally {
    await t.stop();
    sink.kill();
    rmSync(dumps, { recursive: true, force: true });
  }
});

test('workers = 2: smtp.max_connections holds for the node, not per worker', async () => {
  const t = await startTestApp({ server: { workers: 2 }, smtp: { max_connections: 6 } });
  const held: RawSmtpClient[] = [];
  try {
    const firsts: number[] = [];
    for (let i = 0; i < 16; i++) {
      const c = await RawSmtpClient.connect(t.port);
      held.push(c);
      firsts.push((await c.read()).code);
    }
    assert.equal(firsts.filter((c) => c === 220).length, 6, `greetings: ${firsts.join(' ')}`);
    assert.equal(firsts.filter((c) => c === 421).length, 10);
    const workers = await perWorker(t);
    assert.equal([...workers.values()].reduce((a, b) => a + b, 0), 6);
    // Closing admitted sessions gives their places back to the node, whichever worker had them.
    for (const c of held.splice(0)) c.close();
    await waitUntil(async () => {
      const c = await RawSmtpClient.connect(t.port);
      const code = (await c.read()).code;
      c.close();
      return code === 220;
    }, 'a place to come free');
  } finally {
    for (const c of held) c.close();
    await t.stop();
  }
});

test('workers = 2: a reload (SIGHUP) reaches every worker', async () => {
  const t = await startTestApp({ server: { workers: 2 }, routes: { 'example.test': '127.0.0.1:9' }, log_level: 'error' });
  try {
    await t.app.reload({ ...t.app.config, smtp: { ...t.app.config.smtp, max_recipients: 1 } });
    const before = await perWorker(t);
    const seen: number[] = [];
    for (let i = 0; i < 16; i++) {
      const c = await RawSmtpClient.connect(t.port);
      await c.read();
      await c.expect('EHLO client.test', 250);
      await c.expect('MAIL FROM:<a@client.test>', 250);
      await c.expect('RCPT TO:<r1@example.test>', 250);
      seen.push((await c.cmd('RCPT TO:<r2@example.test>')).code);
      c.close();
    }
    assert.deepEqual(seen, Array(16).fill(452), 'every session, on either worker, has max_recipients = 1');
    const after = await perWorker(t);
    for (const w of ['1', '2']) assert.ok((after.get(w) ?? 0) > (before.get(w) ?? 0), `worker ${w} took some of the 16: ${JSON.stringify([...after])}`);
  } finally {
    await t.stop();
  }
});

test('workers = 2: a worker that dies loses no mail it answered 250 to, and is started again', async () => {
  const t = await startTestApp({ server: { workers: 2 }, routes: { 'example.test': '127.0.0.1:9' } });
  try {
    const accepted: string[] = [];
    let failed = 0;
    let stop = false;
    const client = async (n: number) => {
      for (let i = 0; !stop && i < 200; i++) {
        try {
          accepted.push(await submit(t.port, { from: 'a@client.test', to: ['r@example.test'], content: message('a@client.test', ['r@example.test'], `c${n} m${i}`) }));
        } catch {
          failed++; // a session of the dead worker: no 250, so the client keeps the message and may send it again
        }
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    await waitUntil(() => accepted.length >= 40, 'mail flowing');
    const first = t.app.sessionWorkers!.threadOf(1)!;
    await first.terminate();
    await waitUntil(() => t.app.sessionWorkers!.threadOf(1) !== undefined && t.app.sessionWorkers!.threadOf(1) !== first, 'worker 1 to be started again');
    const mark = accepted.length;
    await waitUntil(() => accepted.length >= mark + 40, 'mail flowing after the restart');
    stop = true;
    await Promise.all(clients);
    for (const id of accepted) assert.equal((await t.app.store.recipients.getRecipients(id)).length, 1, `message ${id} (answered 250) is in the queue`);
    const workers = await perWorker(t);
    assert.ok((workers.get('1') ?? 0) > 0 && (workers.get('2') ?? 0) > 0);
    process.stderr.write(`# accepted ${accepted.length}, sessions cut ${failed}\n`);
  } finally {
    await t.stop();
  }
});


test('workers = 2 on the PostgreSQL queue: the workers write through the main thread\'s pool; every 250 is in the queue', async (tc) => {
  const why = await pgUnavailable();
  if (why !== undefined) return void tc.skip(why);
  const db = await createTestDatabase();
  const t = await startTestApp({ server: { workers: 2 }, queue: { backend: 'postgres', url: db.url }, routes: { 'example.test': '127.0.0.1:9' } });
  try {
    const ids = (await Promise.all([0, 1, 2, 3].map(async (n) => {
      const mine: string[] = [];
      for (let i = 0; i < 15; i++) mine.push(await submit(t.port, { from: 'a@client.test', to: ['r@example.test'], content: message('a@client.test', ['r@example.test'], `pg c${n} m${i}`) }));
      return mine;
    }))).flat();
    assert.equal(new Set(ids).size, 60);
    for (const id of ids) assert.equal((await t.app.store.recipients.getRecipients(id)).length, 1, `message ${id} is in the queue`);
    const workers = await perWorker(t);
    assert.ok((workers.get('1') ?? 0) > 0 && (workers.get('2') ?? 0) > 0, `connections on both workers: ${JSON.stringify([...workers])}`);
  } finally {
    await t.stop();
    await db.drop();
  }
});

test('workers = 2: STARTTLS, AUTH and DKIM signing run in the workers (swaks -tls --auth, signed in the queue)', async (tc) => {
  if (!haveTool(tc, existsSync(SWAKS), 'swaks')) return;
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-dkim-keys-'));
  const key = join(dir, 'client.test.w1.pem');
  const gen = await runCli(['dkim', 'keygen', 'client.test', 'w1', '--algorithm', 'ed25519-sha256', '--out', key]);
  assert.equal(gen.code, 0, gen.stderr);
  const t = await startTestApp({
    server: { workers: 2 }, routes: { 'example.test': '127.0.0.1:9' },
    users: [{ name: 'u', password_hash: hashPassword('p') }],
    dkim: [{ domain: 'client.test', selector: 'w1', key, algorithm: 'ed25519-sha256' }],
  });
  try {
    for (let i = 0; i < 4; i++) {
      const res = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(SWAKS, ['--server', '127.0.0.1', '--port', String(t.port), '-tls', '--auth', 'PLAIN', '--auth-user', 'u', '--auth-password', 'p',
          '--from', 'sender@client.test', '--to', 'rcpt@example.test', '--header', `Subject: worker tls ${i}`], { timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? -1) : 0, out: stdout + stderr }));
      });
      assert.equal(res.code, 0, `swaks failed:\n${res.out}`);
      assert.match(res.out, /<~ {2}235 2\.7\.0/);
    }
    const queued = await t.app.store.recipients.listMessages({});
    assert.equal(queued.length, 4);
    for (const q of queued) {
      const body = (await t.app.store.messages.getBody(q.message.id)).toString('latin1');
      assert.match(body, /^DKIM-Signature:[^]*?d=client\.test;[^]*?s=w1;/m, 'signed in the worker');
      assert.match(body, /with ESMTPSA id /, 'received over TLS with AUTH');
    }
  } finally {
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('workers = 2: a failed queue refuses mail in every worker (451 4.3.0 at MAIL)', async () => {
  const t = await startTestApp({ server: { workers: 2 }, routes: { 'example.test': '127.0.0.1:9' } });
  try {
    t.app.store.health.failed(new HalcyonError('HAL_ERR_QUEUE_FAILED', 'test: the queue broke'));
    const before = await perWorker(t);
    for (let i = 0; i < 16; i++) {
      const c = await RawSmtpClient.connect(t.port);
      await c.read();
      await c.expect('EHLO client.test', 250);
      const r = await c.cmd('MAIL FROM:<a@client.test>');
      c.close();
      assert.equal(`${r.code} ${r.enhanced ?? ''}`, '451 4.3.0', `connection ${i}: ${r.lines.join(' ')}`);
    }
    const after = await perWorker(t);
    for (const w of ['1', '2']) assert.ok((after.get(w) ?? 0) > (before.get(w) ?? 0), `worker ${w} took some of the 16: ${JSON.stringify([...after])}`);
  } finally {
    await t.stop();
  }
});

test('workers = 2: the message rate is the node\'s (over 16 connections on both workers, MAIL 6 and on get 450 4.7.1)', async () => {
  const t = await startTestApp({ server: { workers: 2 }, relay: { networks: [] }, inbound: { message_rate_limit: 5 } });
  try {
    const codes: string[] = [];
    for (let i = 0; i < 16; i++) {
      const c = await RawSmtpClient.connect(t.port);
      await c.read();
      await c.expect('EHLO client.test', 250);
      const r = await c.cmd('MAIL FROM:<a@client.test>');
      codes.push(`${r.code} ${r.enhanced ?? ''}`);
      c.close();
    }
    assert.deepEqual(codes, [...Array(5).fill('250 2.1.0'), ...Array(11).fill('450 4.7.1')]);
    const workers = await perWorker(t);
    assert.ok((workers.get('1') ?? 0) > 0 && (workers.get('2') ?? 0) > 0, `connections on both workers: ${JSON.stringify([...workers])}`);
  } finally {
    await t.stop();
  }
});

test('workers = 2: DNSBL look-ups in the workers; their reject lines reach the app\'s log, one JSON line each, with the worker', async () => {
  const zone = 'zen.example.test';
  const dns = await startDnsServer({ [`1.0.0.127.${zone}`]: { A: ['127.0.0.2'] } });
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(s); } });
  const t = await startTestApp({ server: { workers: 2 }, relay: { networks: [] }, dns: { servers: [dns.address], timeout: '500ms' }, inbound: { dnsbl: [zone] } }, { logger });
  try {
    for (let i = 0; i < 8; i++) {
      const from = i % 2 === 0 ? '127.0.0.1' : '127.0.0.2';
      const c = await RawSmtpClient.connect(t.port, { localAddress: from });
      await c.read();
      await c.expect('EHLO client.test', 250);
      await c.expect('MAIL FROM:<sender@client.test>', 250);
      const r = await c.cmd('RCPT TO:<postmaster@localhost>');
      c.close();
      assert.equal(r.code, from === '127.0.0.1' ? 554 : 250, `${from}: ${r.lines.join(' ')}`);
    }
    await waitUntil(() => lines.filter((l) => l.includes('"reason":"dnsbl"')).length === 4, 'the four reject lines');
    const rejects = lines.filter((l) => l.includes('"reason":"dnsbl"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of rejects) assert.ok(r.worker === 1 || r.worker === 2, `a worker's line: ${JSON.stringify(r)}`);
    for (const l of lines) assert.equal(l.trimEnd().split('\n').length, 1, 'one line per write');
  } finally {
    await t.stop();
    await dns.close();
  }
});

test('workers = 2: a pipelined MAIL whose rate is asked of the main thread is answered before the RCPT after it', async () => {
  const t = await startTestApp({ server: { workers: 2 }, relay: { networks: [] }, inbound: { message_rate_limit: 100 } });
  try {
    for (let i = 0; i < 4; i++) {
      const c = await RawSmtpClient.connect(t.port);
      await c.read();
      await c.expect('EHLO client.test', 250);
      c.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<postmaster@localhost>\r\nDATA\r\n');
      const replies = [await c.read(), await c.read(), await c.read()].map((r) => `${r.code}`);
      assert.deepEqual(replies, ['250', '250', '354'], `connection ${i}`);
      const done = await c.cmd('Subject: p\r\n\r\npipelined\r\n.');
      assert.equal(done.code, 250);
      c.close();
    }
  } finally {
    await t.stop();
  }
});

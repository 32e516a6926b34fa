/**
 * SMTP sessions on worker threads (`[server] workers = 2`, decision 0017),
 * over real sockets on loopback: Postfix's smtp-source → Halcyon → Postfix's
 * smtp-sink, every accepted message delivered exactly once and connections
 * taken by both workers; the node's connection limit held across them; a
 * reload reaching both; a worker that dies losing none of the mail it
 * answered 250 to, and started again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveTool, startTestApp, type TestApp } from '../support/halcyon.js';
import { freeLoopbackPort, message, submit, waitUntil } from '../support/postfix.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const SMTP_SOURCE = '/usr/sbin/smtp-source';
const SMTP_SINK = '/usr/sbin/smtp-sink';

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
    for (let i = 0; i < 12; i++) {
      const c = await RawSmtpClient.connect(t.port);
      await c.read();
      await c.expect('EHLO client.test', 250);
      await c.expect('MAIL FROM:<a@client.test>', 250);
      await c.expect('RCPT TO:<r1@example.test>', 250);
      seen.push((await c.cmd('RCPT TO:<r2@example.test>')).code);
      c.close();
    }
    assert.deepEqual(seen, Array(12).fill(452), 'every session, on either worker, has max_recipients = 1');
    const after = await perWorker(t);
    for (const w of ['1', '2']) assert.ok((after.get(w) ?? 0) > (before.get(w) ?? 0), `worker ${w} took some of the 12: ${JSON.stringify([...after])}`);
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


/**
 * Interop: real third-party SMTP clients against an in-process Halcyon —
 * swaks (plain, pipelined, STARTTLS, AUTH PLAIN and LOGIN over TLS), Python's
 * smtplib (a multi-recipient send_message, then STARTTLS + login), and
 * Postfix's smtp-source (1000 messages over 20 parallel sessions). Each test
 * checks the queue afterwards, through the Store, as a user would check
 * `queue list`.
 *
 * The tools come from .ci/run in CI; on a machine without one, its test is
 * skipped with the reason (never passed silently), and fails instead when
 * HALCYON_REQUIRE_INTEROP=1. Nothing is delivered: the scheduler does not run
 * here, and example.test is routed to 127.0.0.1:9 anyway.
 */
import { test, describe, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hashPassword } from '../../src/inbound/auth.js';
import { haveTool, startTestApp, type TestApp } from '../support/halcyon.js';

const SWAKS = '/usr/bin/swaks';
const SMTP_SOURCE = '/usr/sbin/smtp-source';
const hasPython = spawnSync('python3', ['-c', 'import smtplib, ssl'], { stdio: 'ignore' }).status === 0;

const CONFIG = {
  users: [{ name: 'u', password_hash: hashPassword('p') }],
  routes: { 'example.test': '127.0.0.1:9' },
};

function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('interop with swaks and Python smtplib', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(CONFIG); });
  after(async () => t.stop());

  /** The queued messages whose content holds `Subject: <subject>`. */
  async function bySubject(subject: string) {
    const found = [];
    for (const entry of await t.app.store.recipients.listMessages({})) {
      const body = (await t.app.store.messages.getBody(entry.message.id)).toString('latin1');
      if (body.includes(`\r\nSubject: ${subject}\r\n`)) found.push({ ...entry, body });
    }
    return found;
  }

  async function swaks(tc: TestContext, subject: string, extra: readonly string[]) {
    if (!haveTool(tc, existsSync(SWAKS), 'swaks')) return undefined;
    const res = await run(SWAKS, ['--server', '127.0.0.1', '--port', String(t.port), '--helo', 'swaks.test',
      '--from', 'sender@client.test', '--to', 'rcpt@example.test', '--header', `Subject: ${subject}`, '--body', `body of ${subject}`, ...extra]);
    assert.equal(res.code, 0, `swaks failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
    const found = await bySubject(subject);
    assert.equal(found.length, 1, `one message with Subject: ${subject}`);
    const m = found[0]!;
    assert.equal(m.message.sender, 'sender@client.test');
    assert.deepEqual(m.recipients.map((r) => [r.address, r.state]), [['rcpt@example.test', 'queued']]);
    assert.match(m.body, new RegExp(`body of ${subject}`));
    return { ...m, stdout: res.stdout };
  }

  test('swaks, plain ESMTP', async (tc) => {
    const m = await swaks(tc, 'swaks plain', []);
    if (m) assert.equal(m.message.trace.protocol, 'ESMTP');
  });

  test('swaks --pipeline', async (tc) => {
    const m = await swaks(tc, 'swaks pipelined', ['--pipeline']);
    if (m) assert.equal(m.message.trace.protocol, 'ESMTP');
  });

  test('swaks -tls (STARTTLS)', async (tc) => {
    const m = await swaks(tc, 'swaks starttls', ['-tls']);
    if (!m) return;
    assert.equal(m.message.trace.protocol, 'ESMTPS');
    assert.match(m.message.trace.tls ?? '', /^TLS/);
  });

  for (const mech of ['PLAIN', 'LOGIN']) {
    test(`swaks AUTH ${mech} over STARTTLS`, async (tc) => {
      const m = await swaks(tc, `swaks auth ${mech}`, ['-tls', '--auth', mech, '--auth-user', 'u', '--auth-password', 'p']);
      if (!m) return;
      assert.equal(m.message.trace.protocol, 'ESMTPSA');
      assert.equal(m.message.trace.authUser, 'u');
    });
  }

  test('swaks with a wrong password is refused and nothing is queued', async (tc) => {
    if (!haveTool(tc, existsSync(SWAKS), 'swaks')) return;
    const res = await run(SWAKS, ['--server', '127.0.0.1', '--port', String(t.port), '-tls', '--auth', 'PLAIN', '--auth-user', 'u',
      '--auth-password', 'nope', '--from', 'sender@client.test', '--to', 'rcpt@example.test', '--header', 'Subject: swaks bad auth']);
    assert.notEqual(res.code, 0);
    assert.match(res.stdout, /535 5\.7\.8/);
    assert.equal((await bySubject('swaks bad auth')).length, 0);
  });

  test('Python smtplib: send_message to four recipients (To, Cc, Bcc), then STARTTLS + login', async (tc) => {
    if (!haveTool(tc, hasPython, 'python3 (with smtplib and ssl)')) return;
    const script = `
import smtplib, ssl, sys
from email.message import EmailMessage
port = int(sys.argv[1])
m = EmailMessage()
m['From'] = 'py@client.test'
m['To'] = 'a@example.test, b@example.test'
m['Cc'] = 'c@example.test'
m['Bcc'] = 'e@example.test'
m['Subject'] = 'python multi'
m.set_content('hello from python\\n')
with smtplib.SMTP('127.0.0.1', port, local_hostname='py.test', timeout=10) as s:
    refused = s.send_message(m)
    assert refused == {}, refused
with smtplib.SMTP('127.0.0.1', port, local_hostname='py.test', timeout=10) as s:
    s.starttls(context=ssl._create_unverified_context())
    s.login('u', 'p')
    s.sendmail('py@client.test', ['d@example.test'], 'From: py@client.test\\r\\nSubject: python tls\\r\\n\\r\\nsecure\\r\\n')
print('ok')
`;
    const res = await run('python3', ['-c', script, String(t.port)]);
    assert.equal(res.code, 0, `python failed:\n${res.stdout}\n${res.stderr}`);
    const [multi] = await bySubject('python multi');
    assert.ok(multi, 'the multi-recipient message is queued');
    assert.equal(multi.message.sender, 'py@client.test');
    assert.deepEqual(multi.recipients.map((r) => r.address).sort(), ['a@example.test', 'b@example.test', 'c@example.test', 'e@example.test']);
    assert.doesNotMatch(multi.body, /^Bcc:/im, 'the Bcc recipient is in the envelope only');
    const [secure] = await bySubject('python tls');
    assert.ok(secure, 'the message sent after STARTTLS + login is queued');
    assert.equal(secure.message.trace.protocol, 'ESMTPSA');
    assert.equal(secure.message.trace.authUser, 'u');
    assert.deepEqual(secure.recipients.map((r) => r.address), ['d@example.test']);
  });
});

describe('interop with Postfix smtp-source', () => {
  test('smtp-source -s 20 -m 1000 -l 1024: exactly 1000 messages queued, each with its recipient', async (tc) => {
    if (!haveTool(tc, existsSync(SMTP_SOURCE), 'smtp-source (postfix)')) return;
    const t = await startTestApp(CONFIG);
    try {
      const res = await run(SMTP_SOURCE, ['-s', '20', '-m', '1000', '-l', '1024', '-f', 'from@example.test', '-t', 'to@example.test',
        `127.0.0.1:${t.port}`], 120_000);
      assert.equal(res.code, 0, `smtp-source failed:\n${res.stdout}\n${res.stderr}`);
      const counts = await t.app.store.recipients.counts();
      assert.equal(counts.messages, 1000);
      assert.equal(counts.byState.queued, 1000);
      const all = await t.app.store.recipients.listMessages({});
      assert.equal(all.length, 1000);
      for (const { message, recipients } of all) {
        assert.equal(message.sender, 'from@example.test');
        assert.deepEqual(recipients.map((r) => [r.address, r.destination]), [['to@example.test', 'route:127.0.0.1:9']]);
        assert.ok(message.size > 1024, `message ${message.id} holds its 1 KiB of content (${message.size})`);
      }
    } finally {
      await t.stop();
    }
  });
});

/**
 * Submission over implicit TLS (port 465, RFC 8314) and per-user sender
 * restrictions, with clients nobody here wrote: swaks (`--tlsc`, TLS from the
 * first byte) and Python's smtplib.SMTP_SSL.
 *
 * Checks: the session is TLS from the start (no STARTTLS offered, AUTH
 * offered), the same policy as 587 (MAIL FROM without AUTH → 530 5.7.0),
 * messages are queued with protocol ESMTPSA and the AUTH user, and a user
 * with `senders` may use only those addresses (an exact address or a whole
 * "@domain"); others get 553 5.7.1 and nothing is queued.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import tls from 'node:tls';
import { hashPassword } from '../../src/inbound/auth.js';
import { haveTool, startTestApp, type TestApp } from '../support/halcyon.js';

const SWAKS = '/usr/bin/swaks';
const hasPython = spawnSync('python3', ['-c', 'import smtplib, ssl'], { stdio: 'ignore' }).status === 0;

function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('submission on 465 (implicit TLS) and [[users]] senders', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await startTestApp({
      submission: { tls_listen: ['127.0.0.1:0'] },
      users: [
        { name: 'alice', password_hash: hashPassword('alice-pw'), senders: ['alice@example.test', '@alice.test'] },
        { name: 'free', password_hash: hashPassword('free-pw') },
      ],
      routes: { 'remote.test': '127.0.0.1:9' },
    });
    const l = t.app.listening.find((x) => x.kind === 'submission');
    assert.ok(l, JSON.stringify(t.app.listening));
    port = Number(l.address.slice(l.address.lastIndexOf(':') + 1));
  });
  after(async () => t.stop());

  async function bySubject(subject: string) {
    const found = [];
    for (const entry of await t.app.store.recipients.listMessages({})) {
      const body = (await t.app.store.messages.getBody(entry.message.id)).toString('latin1');
      if (body.includes(`\r\nSubject: ${subject}\r\n`)) found.push(entry);
    }
    return found;
  }

  const swaks = (args: readonly string[]) => run(SWAKS, ['--server', '127.0.0.1', '--port', String(port), '--tlsc', '--helo', 'swaks.test',
    '--to', 'rcpt@remote.test', ...args]);

  test('the listener speaks TLS from the first byte: the greeting comes over TLS, EHLO offers AUTH and no STARTTLS', async () => {
    const sock = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    let text = '';
    sock.on('data', (d: Buffer) => { text += d.toString(); });
    await new Promise<void>((resolve, reject) => { sock.once('secureConnect', resolve); sock.once('error', reject); });
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(text, re);
    };
    await waitFor(/^220 /m);
    sock.write('EHLO probe.test\r\n');
    await waitFor(/^250 /m);
    assert.match(text, /AUTH PLAIN LOGIN/);
    assert.doesNotMatch(text, /STARTTLS/);
    sock.write('MAIL FROM:<x@remote.test>\r\n');
    await waitFor(/^530 5\.7\.0 /m);
    sock.end('QUIT\r\n');
  });

  test('swaks --tlsc with AUTH: queued with protocol ESMTPSA and the AUTH user', async (tc) => {
    if (!haveTool(tc, existsSync(SWAKS), 'swaks')) return;
    const res = await swaks(['--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'alice-pw', '--from', 'alice@example.test',
      '--header', 'Subject: swaks 465']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    const [m] = await bySubject('swaks 465');
    assert.ok(m, 'queued');
    assert.equal(m.message.trace.protocol, 'ESMTPSA');
    assert.equal(m.message.trace.authUser, 'alice');
    assert.equal(m.message.sender, 'alice@example.test');
  });

  test('swaks --tlsc: a sender alice does not own → 553 5.7.1, nothing queued; a whole "@domain" rule admits any address there', async (tc) => {
    if (!haveTool(tc, existsSync(SWAKS), 'swaks')) return;
    const bad = await swaks(['--auth', 'LOGIN', '--auth-user', 'alice', '--auth-password', 'alice-pw', '--from', 'bob@example.test',
      '--header', 'Subject: swaks spoof']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout, /\*+ +553 5\.7\.1 Sender address rejected: not owned by the authenticated user/);
    assert.equal((await bySubject('swaks spoof')).length, 0);
    const any = await swaks(['--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'alice-pw', '--from', 'Whoever@ALICE.test',
      '--header', 'Subject: swaks domain rule']);
    assert.equal(any.code, 0, any.stdout);
    assert.equal((await bySubject('swaks domain rule')).length, 1);
  });

  test('swaks --tlsc without AUTH: 530 5.7.0, as on 587', async (tc) => {
    if (!haveTool(tc, existsSync(SWAKS), 'swaks')) return;
    const res = await swaks(['--from', 'alice@example.test', '--header', 'Subject: swaks no auth']);
    assert.notEqual(res.code, 0);
    assert.match(res.stdout, /\*+ +530 5\.7\.0 Authentication required/);
    assert.equal((await bySubject('swaks no auth')).length, 0);
  });

  test('Python smtplib.SMTP_SSL: login and send; a refused sender raises SMTPSenderRefused 553; a user without senders may use any', async (tc) => {
    if (!haveTool(tc, hasPython, 'python3 (with smtplib and ssl)')) return;
    const script = `
import smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl._create_unverified_context()
with smtplib.SMTP_SSL('127.0.0.1', port, local_hostname='py.test', context=ctx, timeout=10) as s:
    s.login('alice', 'alice-pw')
    s.sendmail('alice@example.test', ['rcpt@remote.test'], 'From: alice@example.test\\r\\nSubject: python 465\\r\\n\\r\\nhi\\r\\n')
    try:
        s.sendmail('mallory@example.test', ['rcpt@remote.test'], 'Subject: python spoof\\r\\n\\r\\nhi\\r\\n')
        print('spoof accepted')
    except smtplib.SMTPSenderRefused as e:
        print('refused', e.smtp_code, e.smtp_error.decode())
with smtplib.SMTP_SSL('127.0.0.1', port, local_hostname='py.test', context=ctx, timeout=10) as s:
    s.login('free', 'free-pw')
    s.sendmail('anyone@anywhere.test', ['rcpt@remote.test'], 'Subject: python free\\r\\n\\r\\nhi\\r\\n')
print('ok')
`;
    const res = await run('python3', ['-c', script, String(port)]);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /^refused 553 5\.7\.1 Sender address rejected/m);
    assert.match(res.stdout, /^ok$/m);
    const [m] = await bySubject('python 465');
    assert.ok(m);
    assert.equal(m.message.trace.protocol, 'ESMTPSA');
    assert.equal((await bySubject('python spoof')).length, 0);
    assert.equal((await bySubject('python free')).length, 1);
  });
});

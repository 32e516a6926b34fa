/**
 * Inbound SMTP protocol over real sockets: what a client sees for each
 * command (extensions, reply codes with their RFC 3463 enhanced codes, limits,
 * order, pipelining rules, BDAT, DSN parameters, loop detection, STARTTLS
 * injection, timeouts) and what ends up in the queue, read through the Store.
 *
 * Content-level checks (bare newlines, NUL, smuggling) are in
 * smuggling.test.ts; relay policy in relay.test.ts. Timing is never asserted:
 * timeouts are only checked to happen, with generous read deadlines.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { RawSmtpClient, queuedId, type Reply } from '../support/smtp-client.js';

const MAX_SIZE = 20_000;

/** Connected, greeted, EHLO done. */
async function ehloSession(port: number): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(port);
  assert.equal((await c.read()).code, 220);
  await c.expect('EHLO client.test', 250);
  return c;
}

const codeOf = (r: Reply): string => `${r.code} ${r.enhanced ?? '-'}`;

describe('inbound protocol (max_recipients 3, max_message_size 20000)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ smtp: { max_recipients: 3, max_message_size: MAX_SIZE } });
  });
  after(async () => t.stop());

  const messages = async (): Promise<number> => (await t.app.store.recipients.counts()).messages;

  test('EHLO advertises the extensions Halcyon implements', async () => {
    const c = await RawSmtpClient.connect(t.port);
    const greeting = await c.read();
    assert.equal(greeting.code, 220);
    assert.match(greeting.lines[0]!, /^mx\.halcyon\.test ESMTP/);
    const ehlo = await c.cmd('EHLO client.test');
    assert.equal(ehlo.code, 250);
    const keywords = ehlo.lines.slice(1).map((l) => l.split(' ')[0]);
    for (const ext of ['PIPELINING', 'SIZE', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS', 'DSN', 'CHUNKING']) {
      assert.ok(keywords.includes(ext), `EHLO lacks ${ext}: ${ehlo.lines.join(' | ')}`);
    }
    assert.ok(ehlo.lines.includes(`SIZE ${MAX_SIZE}`), 'SIZE carries the configured limit');
    c.close();
  });

  test('every 2xx/4xx/5xx reply after the greeting, except to EHLO/HELO, carries an enhanced code', async () => {
    const c = await RawSmtpClient.connect(t.port);
    await c.read();
    const script = ['NOOP', 'HELP', 'VRFY someone', 'EHLO client.test', 'NOOP', 'BOGUS', 'MAIL FROM:<bad', 'RCPT TO:<x@remote.test>',
      'MAIL FROM:<s@client.test>', 'RCPT TO:<r@remote.test>', 'DATA', 'Subject: x\r\n\r\nbody\r\n.', 'RSET', 'EXPN list', 'QUIT'];
    for (const line of script) {
      const r = await c.cmd(line);
      // RFC 2034 §3: the greeting and the replies to EHLO/HELO are exempt; 354 is an intermediate reply.
      if (line.startsWith('EHLO') || r.code === 354) continue;
      assert.ok(r.enhanced, `reply to ${line.split('\r')[0]} has no enhanced code: ${r.code} ${r.lines.join(' ')}`);
      assert.equal(r.enhanced[0], String(r.code)[0], `class of ${r.enhanced} matches ${r.code}`);
    }
  });

  test('syntax errors: 501 5.5.2 for commands, 501 5.1.3 for a bad recipient, 501 5.1.7 for a bad sender', async () => {
    const c = await RawSmtpClient.connect(t.port);
    await c.read();
    assert.equal(codeOf(await c.cmd('EHLO')), '501 5.5.2');
    await c.expect('EHLO client.test', 250);
    assert.equal(codeOf(await c.cmd('MAIL FROMX:<a@b.test>')), '501 5.5.2');
    assert.equal(codeOf(await c.cmd('MAIL FROM:<no-at-sign>')), '501 5.1.7');
    await c.expect('MAIL FROM:<a@client.test>', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<no-at-sign>')), '501 5.1.3');
    assert.equal(codeOf(await c.cmd('RCPT TO:<a@bad..domain>')), '501 5.1.3');
    assert.equal(codeOf(await c.cmd('DATA extra')), '501 5.5.2');
    c.close();
  });

  test('bad sequence of commands: 503 5.5.1', async () => {
    const c = await RawSmtpClient.connect(t.port);
    await c.read();
    assert.equal(codeOf(await c.cmd('MAIL FROM:<a@client.test>')), '503 5.5.1', 'MAIL before EHLO');
    await c.expect('EHLO client.test', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<r@remote.test>')), '503 5.5.1', 'RCPT before MAIL');
    assert.equal(codeOf(await c.cmd('DATA')), '503 5.5.1', 'DATA before MAIL');
    await c.expect('MAIL FROM:<a@client.test>', 250);
    assert.equal(codeOf(await c.cmd('MAIL FROM:<a@client.test>')), '503 5.5.1', 'nested MAIL');
    assert.equal(codeOf(await c.cmd('DATA')), '503 5.5.1', 'DATA before any RCPT');
    c.close();
  });

  test('unknown command: 500 5.5.1; VRFY: 252', async () => {
    const c = await ehloSession(t.port);
    assert.equal(codeOf(await c.cmd('XYZZY plugh')), '500 5.5.1');
    assert.equal((await c.cmd('VRFY postmaster')).code, 252);
    c.close();
  });

  test('a 600-octet command line gets 500 5.5.2 and the session goes on', async () => {
    const c = await ehloSession(t.port);
    assert.equal(codeOf(await c.cmd(`NOOP ${'x'.repeat(595)}`)), '500 5.5.2');
    assert.equal(codeOf(await c.cmd('NOOP')), '250 2.0.0');
    await c.expect('MAIL FROM:<a@client.test>', 250);
    c.close();
  });

  test('a 65-octet local part is refused with 501; 64 octets is accepted', async () => {
    const c = await ehloSession(t.port);
    await c.expect('MAIL FROM:<a@client.test>', 250);
    assert.equal((await c.cmd(`RCPT TO:<${'a'.repeat(65)}@remote.test>`)).code, 501);
    assert.equal((await c.cmd(`RCPT TO:<${'a'.repeat(64)}@remote.test>`)).code, 250);
    c.close();
  });

  test('more than max_recipients: 452 4.5.3, and the message keeps the first three', async () => {
    const c = await ehloSession(t.port);
    await c.expect('MAIL FROM:<a@client.test>', 250);
    for (const n of [1, 2, 3]) await c.expect(`RCPT TO:<r${n}@remote.test>`, 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<r4@remote.test>')), '452 4.5.3');
    await c.expect('DATA', 354);
    const id = queuedId(await c.cmd('Subject: many\r\n\r\nhi\r\n.'));
    assert.ok(id);
    const rcpts = await t.app.store.recipients.getRecipients(id);
    assert.deepEqual(rcpts.map((r) => r.address).sort(), ['r1@remote.test', 'r2@remote.test', 'r3@remote.test']);
    c.close();
  });

  test('SIZE above the limit at MAIL: 552 5.3.4', async () => {
    const c = await ehloSession(t.port);
    assert.equal(codeOf(await c.cmd(`MAIL FROM:<a@client.test> SIZE=${MAX_SIZE + 1}`)), '552 5.3.4');
    assert.equal(codeOf(await c.cmd('MAIL FROM:<a@client.test> SIZE=99999999999999')), '552 5.3.4');
    c.close();
  });

  test('content over max_message_size: 552 5.3.4 and nothing queued', async () => {
    const before = await messages();
    const c = await ehloSession(t.port);
    await c.expect('MAIL FROM:<a@client.test>', 250);
    await c.expect('RCPT TO:<r@remote.test>', 250);
    await c.expect('DATA', 354);
    const line = `${'y'.repeat(98)}\r\n`;
    c.write(`Subject: big\r\n\r\n${line.repeat(Math.ceil((MAX_SIZE * 2) / line.length))}`);
    assert.equal(codeOf(await c.cmd('.')), '552 5.3.4');
    assert.equal(codeOf(await c.cmd('NOOP')), '250 2.0.0', 'session continues after the refusal');
    assert.equal(await messages(), before);
    c.close();
  });

  test('pipelined commands after EHLO are answered in order', async () => {
    const c = await ehloSession(t.port);
    c.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<r@remote.test>\r\nRCPT TO:<bad>\r\nDATA\r\n');
    assert.deepEqual([codeOf(await c.read()), codeOf(await c.read()), codeOf(await c.read()), (await c.read()).code],
      ['250 2.1.0', '250 2.1.5', '501 5.1.3', 354]);
    const r = await c.cmd('Subject: p\r\n\r\npipelined\r\n.');
    assert.ok(queuedId(r));
    c.close();
  });

  test('pipelining after HELO (not offered): 554 5.5.0 and the connection closes', async () => {
    const before = await messages();
    const c = await RawSmtpClient.connect(t.port);
    await c.read();
    await c.expect('HELO client.test', 250);
    c.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<r@remote.test>\r\nDATA\r\n');
    assert.equal(codeOf(await c.read()), '554 5.5.0');
    assert.equal(await c.readOrClose(), undefined, 'nothing after the 554');
    await c.waitClosed();
    assert.equal(await messages(), before);
  });

  test('BDAT in two chunks makes one message with exactly that content', async () => {
    const c = await ehloSession(t.port);
    await c.expect('MAIL FROM:<a@client.test> BODY=8BITMIME', 250);
    await c.expect('RCPT TO:<r@remote.test>', 250);
    const part1 = 'Subject: chunked\r\nFrom: a@client.test\r\n\r\nfirst half, ';
    const part2 = 'second half\r\n.leading dot kept\r\n';
    c.write(`BDAT ${Buffer.byteLength(part1)}\r\n${part1}`);
    assert.equal(codeOf(await c.read()), '250 2.0.0');
    c.write(`BDAT ${Buffer.byteLength(part2)} LAST\r\n${part2}`);
    const id = queuedId(await c.read());
    assert.ok(id, 'BDAT LAST is answered with queued as');
    const body = await t.app.store.messages.getBody(id);
    const want = Buffer.from(part1 + part2);
    assert.ok(body.subarray(0, 10).toString() === 'Received: ', 'our trace header comes first');
    assert.deepEqual(body.subarray(body.length - want.length), want);
    assert.equal(body.indexOf('Subject: chunked'), body.length - want.length, 'content appears once, after the trace header');
    c.close();
  });

  test('DSN parameters are stored on the message and the recipient', async () => {
    const c = await ehloSession(t.port);
    await c.expect('MAIL FROM:<s@client.test> RET=HDRS ENVID=x', 250);
    await c.expect('RCPT TO:<r@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b', 250);
    await c.expect('DATA', 354);
    const id = queuedId(await c.cmd('Subject: dsn\r\n\r\nhi\r\n.'));
    assert.ok(id);
    const msg = await t.app.store.messages.getMessage(id);
    assert.equal(msg?.params.ret, 'HDRS');
    assert.equal(msg?.params.envid, 'x');
    const [rcpt] = await t.app.store.recipients.getRecipients(id);
    assert.deepEqual(rcpt?.notify, ['SUCCESS', 'FAILURE']);
    assert.equal(rcpt?.orcpt, 'rfc822;a@b');
    c.close();
  });

  test('51 Received headers: 554 5.4.6 (mail loop), nothing queued', async () => {
    const before = await messages();
    const c = await ehloSession(t.port);
    await c.expect('MAIL FROM:<a@client.test>', 250);
    await c.expect('RCPT TO:<r@remote.test>', 250);
    await c.expect('DATA', 354);
    const hops = Array.from({ length: 51 }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test; Sat, 28 Nov 2026 01:02:03 +0000\r\n`).join('');
    assert.equal(codeOf(await c.cmd(`${hops}Subject: loop\r\n\r\nround and round\r\n.`)), '554 5.4.6');
    assert.equal(await messages(), before);
    c.close();
  });

  test('STARTTLS with a command in the same packet: the plaintext command is discarded (CVE-2011-0411)', async () => {
    const c = await ehloSession(t.port);
    c.write('STARTTLS\r\nRSET\r\nMAIL FROM:<injected@evil.test>\r\n');
    assert.equal(codeOf(await c.read()), '220 2.0.0');
    await c.upgradeTls();
    // Had the injected RSET/MAIL run, their replies (250 2.0.0 / 503) would come first over TLS.
    const first = await c.cmd('EHLO tls.test');
    assert.equal(first.code, 250);
    assert.match(first.lines[0]!, /Hello tls\.test/);
    assert.ok(!first.lines.includes('STARTTLS'), 'STARTTLS is not offered again inside TLS');
    await c.expect('MAIL FROM:<a@client.test>', 250);
    await c.expect('RCPT TO:<r@remote.test>', 250);
    await c.expect('DATA', 354);
    const id = queuedId(await c.cmd('Subject: tls\r\n\r\nsecret\r\n.'));
    assert.ok(id);
    assert.equal(c.unread.length, 0, 'no stray replies');
    const msg = await t.app.store.messages.getMessage(id);
    assert.equal(msg?.sender, 'a@client.test');
    assert.equal(msg?.trace.protocol, 'ESMTPS');
    c.close();
  });
});

describe('inbound connection-level limits', () => {
  test('a client that talks before a delayed greeting gets 554 5.5.0; a patient one is greeted', async () => {
    const t = await startTestApp({ smtp: { greeting_delay: '500ms' } });
    try {
      const rude = await RawSmtpClient.connect(t.port);
      rude.write('EHLO eager.test\r\n');
      assert.equal(codeOf(await rude.read()), '554 5.5.0');
      await rude.waitClosed();
      const polite = await RawSmtpClient.connect(t.port);
      assert.equal((await polite.read()).code, 220);
      assert.equal((await polite.cmd('EHLO polite.test')).code, 250);
      polite.close();
    } finally {
      await t.stop();
    }
  });

  test('connections over max_connections_per_ip get 421 4.7.0', async () => {
    const t = await startTestApp({ smtp: { max_connections_per_ip: 2 } });
    try {
      const a = await RawSmtpClient.connect(t.port);
      const b = await RawSmtpClient.connect(t.port);
      assert.equal((await a.read()).code, 220);
      assert.equal((await b.read()).code, 220);
      const c = await RawSmtpClient.connect(t.port);
      assert.equal(codeOf(await c.read()), '421 4.7.0');
      await c.waitClosed();
      a.close();
      b.close();
    } finally {
      await t.stop();
    }
  });

  test('an idle client is dropped with 421 4.4.2 after command_timeout', async () => {
    const t = await startTestApp({ smtp: { command_timeout: '300ms' } });
    try {
      const c = await ehloSession(t.port);
      assert.equal(codeOf(await c.read(10_000)), '421 4.4.2');
      await c.waitClosed();
    } finally {
      await t.stop();
    }
  });
});

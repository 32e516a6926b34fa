/**
 * Inbound message content over real sockets: NUL octets, bare CR/LF under
 * both `smtp.bare_newline` settings, and the SMTP smuggling sequences
 * (SEC Consult 2023): a fake end of data followed by a smuggled transaction
 * must never become a second message, and nothing with a bare CR or LF is
 * ever stored (so it cannot be relayed to a server that reads it differently).
 *
 * What is checked is what a victim would care about: how many "queued as"
 * replies came back and what the queue holds. The DATA reader's own unit
 * tests live in src/smtp/data.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { RawSmtpClient, queuedId, type Reply } from '../support/smtp-client.js';

const BARE = /\r(?!\n)|(?<!\r)\n/;

/** Opens a transaction up to the 354; the caller writes the content. */
async function openData(port: number, rcpt = 'victim-real@remote.test'): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(port);
  assert.equal((await c.read()).code, 220);
  await c.expect('EHLO client.test', 250);
  await c.expect('MAIL FROM:<sender@client.test>', 250);
  await c.expect(`RCPT TO:<${rcpt}>`, 250);
  await c.expect('DATA', 354);
  return c;
}

/** Reads replies until the reply to a trailing NOOP (250 2.0.0 Ok, not "queued as"), bounded. */
async function repliesUntilNoop(c: RawSmtpClient): Promise<Reply[]> {
  c.write('NOOP\r\n');
  const seen: Reply[] = [];
  for (let i = 0; i < 20; i++) {
    const r = await c.readOrClose();
    if (!r) break;
    seen.push(r);
    if (r.code === 250 && r.enhanced === '2.0.0' && r.lines[0] === 'Ok') break;
  }
  return seen;
}

describe('DATA content with bare_newline = "normalize" (the default)', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => t.stop());

  test('NUL in DATA: 550 and nothing queued', async () => {
    const before = (await t.app.store.recipients.counts()).messages;
    const c = await openData(t.port);
    const r = await c.cmd('Subject: nul\r\n\r\nbefore\x00after\r\n.');
    assert.equal(r.code, 550);
    assert.equal(r.enhanced?.[0], '5');
    assert.equal((await t.app.store.recipients.counts()).messages, before);
    c.close();
  });

  test('bare LF is accepted and stored with CRLF line ends only', async () => {
    const c = await openData(t.port);
    const id = queuedId(await c.cmd('Subject: lf\r\n\r\nline one\nline two\rline three\r\n.'));
    assert.ok(id, 'accepted');
    const body = (await t.app.store.messages.getBody(id)).toString('latin1');
    assert.doesNotMatch(body, BARE);
    assert.match(body, /line one\r\nline two\r\nline three\r\n$/);
    c.close();
  });

  const SEQUENCES: readonly [string, string][] = [
    ['\\n.\\n', '\n.\n'], ['\\n.\\r', '\n.\r'], ['\\r.\\n', '\r.\n'], ['\\r.\\r', '\r.\r'],
    ['\\n.\\r\\n', '\n.\r\n'], ['\\r.\\r\\n', '\r.\r\n'], ['\\r\\n\\x00.\\r\\n', '\r\n\x00.\r\n'],
    ['\\r\\n.\\r\\r\\n', '\r\n.\r\r\n'], ['\\r\\r\\n.\\r\\r\\n', '\r\r\n.\r\r\n'], ['\\r\\n.\\n', '\r\n.\n'], ['\\r\\n.\\r', '\r\n.\r'],
  ];

  for (const [name, seq] of SEQUENCES) {
    test(`smuggling with ${name}: at most one message, nothing smuggled, no bare CR/LF stored`, async () => {
      const before = await t.app.store.recipients.listMessages({});
      const c = await openData(t.port);
      c.write(`Subject: real\r\n\r\nreal body${seq}`
        + 'MAIL FROM:<smuggler@evil.test>\r\nRCPT TO:<victim-smuggled@remote.test>\r\nDATA\r\n'
        + 'Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n');
      const replies = await repliesUntilNoop(c);
      c.close();
      const queued = replies.filter((r) => queuedId(r) !== undefined);
      assert.ok(queued.length <= 1, `${queued.length} "queued as" replies: ${replies.map((r) => r.code).join(',')}`);
      assert.ok(!replies.some((r) => r.code === 354), 'the smuggled DATA was never answered');
      const after = await t.app.store.recipients.listMessages({});
      const fresh = after.filter((m) => !before.some((b) => b.message.id === m.message.id));
      assert.ok(fresh.length <= 1, `${fresh.length} messages queued`);
      assert.equal(fresh.length, queued.length, 'what was acknowledged is what was queued');
      for (const m of fresh) {
        assert.equal(m.message.sender, 'sender@client.test');
        assert.deepEqual(m.recipients.map((r) => r.address), ['victim-real@remote.test']);
        const body = (await t.app.store.messages.getBody(m.message.id)).toString('latin1');
        assert.doesNotMatch(body, BARE, 'no bare CR or LF stored');
      }
    });
  }
});

describe('DATA content with bare_newline = "reject"', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp({ smtp: { bare_newline: 'reject' } }); });
  after(async () => t.stop());

  test('bare LF: 550 5.5.2 and nothing queued', async () => {
    const c = await openData(t.port);
    const r = await c.cmd('Subject: lf\r\n\r\nline one\nline two\r\n.');
    assert.equal(`${r.code} ${r.enhanced}`, '550 5.5.2');
    assert.equal((await t.app.store.recipients.counts()).messages, 0);
    c.close();
  });

  test('bare CR: 550 5.5.2; a clean message right after on the same session is accepted', async () => {
    const c = await openData(t.port);
    assert.equal((await c.cmd('Subject: cr\r\n\r\nline one\rline two\r\n.')).code, 550);
    await c.expect('MAIL FROM:<sender@client.test>', 250);
    await c.expect('RCPT TO:<r@remote.test>', 250);
    await c.expect('DATA', 354);
    assert.ok(queuedId(await c.cmd('Subject: clean\r\n\r\nfine\r\n.')));
    assert.equal((await t.app.store.recipients.counts()).messages, 1);
    c.close();
  });
});

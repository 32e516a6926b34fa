/**
 * Relay policy over real sockets: a client outside `relay.networks`
 * (127.0.0.2, while only 127.0.0.1/32 may relay) may send to local mailboxes
 * only; every classic trick to make a local-looking address route elsewhere
 * gets 554 5.7.1; unknown users get 550 5.1.1; AUTH (allowed on loopback
 * without TLS) lifts the restriction, a wrong password gets 535 5.7.8. Also
 * the RCPT-time quota check against a declared SIZE (552 5.2.2).
 *
 * Local delivery itself is not tested here (nothing is delivered).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword } from '../../src/inbound/auth.js';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { RawSmtpClient, queuedId, type Reply } from '../support/smtp-client.js';

const OUTSIDER = '127.0.0.2';
const codeOf = (r: Reply): string => `${r.code} ${r.enhanced ?? '-'}`;
const plain = (user: string, password: string): string => Buffer.from(`\0${user}\0${password}`).toString('base64');

describe('relay policy for a client outside relay.networks', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({
      relay: { networks: ['127.0.0.1/32'] },
      domains: [{ name: 'local.test', mailboxes: [{ user: 'alice' }, { user: 'small', quota: '2k' }] }],
      users: [{ name: 'u', password_hash: hashPassword('p') }],
    });
  });
  after(async () => t.stop());

  async function outsider(): Promise<RawSmtpClient> {
    const c = await RawSmtpClient.connect(t.port, { localAddress: OUTSIDER });
    assert.equal((await c.read()).code, 220);
    return c;
  }

  test('mail to a local mailbox is accepted and queued for local delivery', async () => {
    const c = await outsider();
    await c.expect('EHLO outside.test', 250);
    await c.expect('MAIL FROM:<someone@outside.test>', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<alice@local.test>')), '250 2.1.5');
    await c.expect('DATA', 354);
    const id = queuedId(await c.cmd('Subject: hi\r\n\r\nhello alice\r\n.'));
    assert.ok(id);
    const [rcpt] = await t.app.store.recipients.getRecipients(id);
    assert.equal(rcpt?.address, 'alice@local.test');
    assert.equal(rcpt?.destination, 'local:local.test');
    assert.equal((await t.app.store.messages.getMessage(id))?.trace.clientIp, OUTSIDER);
    c.close();
  });

  test('relaying to a remote domain and every routing trick: 554 5.7.1', async () => {
    const c = await outsider();
    await c.expect('EHLO outside.test', 250);
    await c.expect('MAIL FROM:<someone@outside.test>', 250);
    const tricks = [
      'bob@remote.test',
      'alice%remote.test@local.test',
      'remote.test!alice@local.test',
      '@local.test:alice@remote.test',
      '"alice@remote.test"@local.test',
      'alice@[127.0.0.1]',
    ];
    for (const addr of tricks) assert.equal(codeOf(await c.cmd(`RCPT TO:<${addr}>`)), '554 5.7.1', addr);
    assert.equal(codeOf(await c.cmd('DATA')), '554 5.5.1', 'no valid recipients');
    c.close();
  });

  test('an unknown local user: 550 5.1.1', async () => {
    const c = await outsider();
    await c.expect('EHLO outside.test', 250);
    await c.expect('MAIL FROM:<someone@outside.test>', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<nobody@local.test>')), '550 5.1.1');
    c.close();
  });

  test('a client inside relay.networks may relay', async () => {
    const c = await RawSmtpClient.connect(t.port, { localAddress: '127.0.0.1' });
    await c.read();
    await c.expect('EHLO inside.test', 250);
    await c.expect('MAIL FROM:<someone@inside.test>', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<bob@remote.test>')), '250 2.1.5');
    c.close();
  });

  test('after AUTH PLAIN the outsider may relay; the message records who authenticated', async () => {
    const c = await outsider();
    const ehlo = await c.expect('EHLO outside.test', 250);
    assert.ok(ehlo.lines.some((l) => /^AUTH\b.*\bPLAIN\b/.test(l)), 'AUTH offered on loopback');
    assert.equal(codeOf(await c.cmd(`AUTH PLAIN ${plain('u', 'p')}`)), '235 2.7.0');
    await c.expect('MAIL FROM:<u@outside.test>', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<bob@remote.test>')), '250 2.1.5');
    await c.expect('DATA', 354);
    const id = queuedId(await c.cmd('Subject: relayed\r\n\r\nhi bob\r\n.'));
    assert.ok(id);
    const msg = await t.app.store.messages.getMessage(id);
    assert.equal(msg?.trace.authUser, 'u');
    assert.equal(msg?.trace.protocol, 'ESMTPA');
    const [rcpt] = await t.app.store.recipients.getRecipients(id);
    assert.equal(rcpt?.address, 'bob@remote.test');
    c.close();
  });

  test('a wrong password: 535 5.7.8, and relaying stays refused', async () => {
    const c = await outsider();
    await c.expect('EHLO outside.test', 250);
    assert.equal(codeOf(await c.cmd(`AUTH PLAIN ${plain('u', 'wrong')}`)), '535 5.7.8');
    assert.equal(codeOf(await c.cmd(`AUTH PLAIN ${plain('nouser', 'p')}`)), '535 5.7.8');
    await c.expect('MAIL FROM:<u@outside.test>', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<bob@remote.test>')), '554 5.7.1');
    c.close();
  });

  test('a declared SIZE above a mailbox quota: 552 5.2.2 at RCPT; a small one is accepted', async () => {
    const c = await outsider();
    await c.expect('EHLO outside.test', 250);
    await c.expect('MAIL FROM:<someone@outside.test> SIZE=3000', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<small@local.test>')), '552 5.2.2');
    assert.equal(codeOf(await c.cmd('RCPT TO:<alice@local.test>')), '250 2.1.5', 'unlimited mailbox still fine');
    await c.expect('RSET', 250);
    await c.expect('MAIL FROM:<someone@outside.test> SIZE=500', 250);
    assert.equal(codeOf(await c.cmd('RCPT TO:<small@local.test>')), '250 2.1.5');
    c.close();
  });
});

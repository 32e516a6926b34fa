/**
 * Interop: Halcyon's SMTP client relaying to a real, private Postfix (the
 * remote MTA), with the scheduler running as in production.
 *
 * - I3: Postfix with smtpd_recipient_limit = 3 gets a 10-recipient message
 *   in ⌈10/3⌉ = 4 transactions; every mailbox gets exactly one copy.
 * - I4: Postfix answering `552 5.2.2` (an access table) to the FIRST
 *   recipient gets one transaction; that recipient fails with Postfix's exact
 *   reply and host recorded, and the sender gets one DSN naming only it.
 *
 * - CHUNKING: Postfix's smtpd offers it, so Halcyon sends BDAT; a message
 *   with lines that start with a dot and 8-bit bytes arrives byte-identical
 *   (in Postfix's Maildir, which stores LF line ends).
 *
 * Evidence is read where a user would look: Postfix's maillog and Maildirs,
 * Halcyon's queue (Store) and the sender's local Maildir. Skipped with the
 * reason when Postfix is missing, failed instead under HALCYON_REQUIRE_INTEROP=1.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import {
  POSTFIX, requirePeer, startPostfix, submit, message, waitUntil, holdRemoval, halcyonMaildir, parseDsn,
} from '../support/postfix.js';

const SENDER = 'sender@local.test';

function halcyonConfig(postfixPort: number): Record<string, unknown> {
  return {
    postmaster: 'postmaster@local.test',
    domains: [{ name: 'local.test', mailboxes: [{ user: 'sender' }, { user: 'postmaster' }] }],
    routes: { 'example.test': `127.0.0.1:${postfixPort}` },
    delivery: { tls: 'none' },
  };
}

describe('Halcyon → real Postfix', { timeout: 180_000 }, () => {
  test('I3: 10 recipients, smtpd_recipient_limit = 3 → 4 transactions, one copy each', async (t) => {
    if (!requirePeer(t, POSTFIX)) return;
    const users = Array.from({ length: 10 }, (_, i) => `a${i}`);
    const pf = await startPostfix({ recipientLimit: 3, virtualMailboxes: users });
    t.after(() => pf.stop());
    const h = await startTestApp(halcyonConfig(pf.port), { scheduler: true });
    t.after(() => h.stop());
    const hold = holdRemoval(h.app.store.recipients);

    const rcpts = users.map((u) => `${u}@example.test`);
    const id = await submit(h.port, { from: SENDER, to: rcpts, content: message(SENDER, rcpts, 'I3 limit three') });

    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered'), 'all 10 delivered in Halcyon');
    await pf.waitLog((log) => (log.match(/status=sent/g) ?? []).length >= 10);

    const rows = await h.app.store.recipients.getRecipients(id);
    assert.equal(rows.length, 10);
    for (const r of rows) {
      assert.equal(r.state, 'delivered', `${r.address}: ${JSON.stringify(r.lastReply)}`);
      assert.equal(r.attempts, 1, `${r.address}: limit-deferral must cost no retry`);
      assert.equal(r.lastReply?.host, `127.0.0.1[127.0.0.1]:${pf.port}`);
    }
    for (const u of users) assert.equal(pf.maildir(u).length, 1, `${u}@example.test has exactly one copy`);
    const tx = [...pf.transactions().values()].sort();
    assert.deepEqual(tx, [1, 3, 3, 3], `Postfix queued 4 transactions of ≤3 recipients:\n${pf.maillog()}`);
    // One connection from Halcyon (the other "connect from" is startPostfix's readiness probe).
    assert.equal((pf.maillog().match(/smtpd\[\d+\]: connect from/g) ?? []).length, 2, 'all 4 transactions on one connection');

    hold.release();
    await waitUntil(async () => (await h.app.store.messages.getMessage(id)) === undefined, 'the delivered message is removed from the queue');
    assert.equal(halcyonMaildir(h.dataDir, 'local.test', 'sender').length, 0, 'no DSN for a fully delivered message');
  });

  test('CHUNKING: Postfix offers it, Halcyon sends BDAT; dot lines and 8-bit bytes arrive byte-identical', async (t) => {
    if (!requirePeer(t, POSTFIX)) return;
    const pf = await startPostfix({ virtualMailboxes: ['a0', 'a1'] });
    t.after(() => pf.stop());
    const h = await startTestApp(halcyonConfig(pf.port), { scheduler: true });
    t.after(() => h.stop());
    const hold = holdRemoval(h.app.store.recipients);
    const rcpts = ['a0@example.test', 'a1@example.test'];
    const body = ['.a line that starts with a dot', '..and one with two', '.', 'Grüße, café, naïve — ☃ 8-bit bytes', '. dot space', 'end'].join('\r\n');
    const id = await submit(h.port, { from: SENDER, to: rcpts, content: message(SENDER, rcpts, 'BDAT to Postfix', body) });
    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered'), 'both delivered in Halcyon');
    await pf.waitLog((log) => (log.match(/status=sent/g) ?? []).length >= 2);
    const stored = await h.app.store.messages.getBody(id);
    hold.release();
    assert.ok(stored.includes(Buffer.from('\r\n.a line that starts with a dot\r\n')), 'the queue holds the unstuffed text');
    // Postfix's smtpd counts the commands it got at disconnect: BDAT, never DATA.
    // (Halcyon keeps the connection for reuse a few seconds; wait for it to close.)
    const pattern = /disconnect from \S+ ehlo=\d+ mail=\d+ rcpt=\d+ (\w+)=(\d+)/;
    const disconnect = pattern.exec(await pf.waitLog((log) => pattern.test(log)));
    assert.ok(disconnect, pf.maillog());
    assert.equal(disconnect[1], 'bdat', `Halcyon used ${disconnect[1]}:\n${pf.maillog()}`);
    // Postfix's Maildir copy: its own headers on top, then exactly Halcyon's bytes (Postfix stores LF line ends).
    const expected = stored.toString('latin1').replace(/\r\n/g, '\n');
    for (const u of ['a0', 'a1']) {
      const files = pf.maildir(u);
      assert.equal(files.length, 1);
      const got = readFileSync(files[0]!).toString('latin1');
      assert.ok(got.endsWith(expected), `${u}: Postfix's copy ends with the stored message byte for byte`);
    }
  });

  test('I4: 552 5.2.2 to the first recipient → one transaction, one DSN naming only it', async (t) => {
    if (!requirePeer(t, POSTFIX)) return;
    const users = ['full', 'b1', 'b2', 'b3', 'b4'];
    const pf = await startPostfix({ virtualMailboxes: users, accessTable: { 'full@example.test': '552 5.2.2 Mailbox full' } });
    t.after(() => pf.stop());
    const h = await startTestApp(halcyonConfig(pf.port), { scheduler: true });
    t.after(() => h.stop());
    const hold = holdRemoval(h.app.store.recipients);

    const rcpts = users.map((u) => `${u}@example.test`);
    const id = await submit(h.port, { from: SENDER, to: rcpts, content: message(SENDER, rcpts, 'I4 first full') });

    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered' || r.state === 'failed'),
      'every recipient final in Halcyon');
    await pf.waitLog((log) => (log.match(/status=sent/g) ?? []).length >= 4);

    const rows = await h.app.store.recipients.getRecipients(id);
    const full = rows.find((r) => r.address === 'full@example.test')!;
    assert.equal(full.state, 'failed');
    assert.equal(full.attempts, 1);
    assert.equal(full.lastReply?.code, 552);
    assert.equal(full.lastReply?.enhanced, '5.2.2');
    assert.equal(full.lastReply?.host, `127.0.0.1[127.0.0.1]:${pf.port}`);
    assert.equal(full.lastReply?.command, 'RCPT TO');
    // The exact reply Postfix sent, as its own log records it.
    const reject = /NOQUEUE: reject: RCPT from [^:]+: (552 5\.2\.2 [^;]+);/.exec(pf.maillog());
    assert.ok(reject, `Postfix logged the 552:\n${pf.maillog()}`);
    assert.equal(`${full.lastReply.code} ${full.lastReply.enhanced} ${full.lastReply.text}`, reject[1]);
    for (const r of rows.filter((x) => x !== full)) assert.equal(r.state, 'delivered', r.address);

    assert.equal(pf.maildir('full').length, 0);
    for (const u of users.slice(1)) assert.equal(pf.maildir(u).length, 1, `${u} has exactly one copy`);
    assert.deepEqual([...pf.transactions().values()], [4], 'exactly one transaction, carrying the 4 others');
    assert.equal((pf.maillog().match(/reject: RCPT/g) ?? []).length, 1, 'the full mailbox was asked once');

    // The DSN: queued to the sender, delivered to its local Maildir, naming only the full mailbox.
    hold.release();
    await waitUntil(() => halcyonMaildir(h.dataDir, 'local.test', 'sender').length >= 1, 'a DSN in the sender mailbox');
    await waitUntil(async () => (await h.app.store.messages.getMessage(id)) === undefined, 'the original removed once reported');
    const box = halcyonMaildir(h.dataDir, 'local.test', 'sender');
    assert.equal(box.length, 1, 'exactly one DSN');
    const dsn = parseDsn(box[0]!.content);
    assert.match(dsn.top.headers.get('content-type') ?? '', /^multipart\/report;.*report-type=delivery-status/i);
    assert.deepEqual(dsn.perRecipient.map((g) => g.get('final-recipient')), ['rfc822; full@example.test']);
    const only = dsn.perRecipient[0]!;
    assert.equal(only.get('action'), 'failed');
    assert.equal(only.get('status'), '5.2.2');
    assert.equal(only.get('remote-mta'), 'dns; 127.0.0.1');
    assert.equal(only.get('diagnostic-code'), `smtp; ${reject[1]}`);
  });
});

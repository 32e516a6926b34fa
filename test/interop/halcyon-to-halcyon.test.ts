/**
 * The seed scenario, end to end between two real Halcyons on loopback:
 * Halcyon A relays a 5-recipient message to Halcyon B (routes b.test → B),
 * where the FIRST recipient's mailbox is over quota, so B answers
 * `552 5.2.2` to the first RCPT TO.
 *
 * What must hold (I4, and I1 through B's eyes): B sees exactly ONE
 * transaction from A, carrying the 4 others; each of those mailboxes gets
 * one copy; the full mailbox gets nothing more; A's sender gets exactly ONE
 * DSN naming only the full mailbox. Both run with their schedulers on, as in
 * production; nothing is mocked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp } from '../support/halcyon.js';
import { submit, message, waitUntil, halcyonMaildir, holdRemoval, parseDsn } from '../support/postfix.js';

test('A → B: 552 5.2.2 for the first of 5 recipients → one transaction, one DSN', { timeout: 60_000 }, async (t) => {
  const others = ['m1', 'm2', 'm3', 'm4'];
  const b = await startTestApp({
    hostname: 'b.halcyon.test',
    domains: [{ name: 'b.test', mailboxes: [{ user: 'full', quota: '1k' }, ...others.map((user) => ({ user }))] }],
    delivery: { queue_scan_interval: '200ms' },
  }, { scheduler: true });
  t.after(() => b.stop());
  const bHold = holdRemoval(b.app.store.recipients);

  // Fill B's first mailbox with a direct delivery through B's own SMTP: about 900 of its 1024 bytes, so
  // no further message fits (B's delivery refuses what would exceed the quota, so "full" means "nothing more fits").
  await submit(b.port, { from: 'filler@elsewhere.test', to: ['full@b.test'], content: message('filler@elsewhere.test', ['full@b.test'], 'filler', Array(6).fill('f'.repeat(80)).join('\r\n')) });
  await waitUntil(() => halcyonMaildir(b.dataDir, 'b.test', 'full').length === 1, 'the filler in full@b.test');
  const used = halcyonMaildir(b.dataDir, 'b.test', 'full')[0]!.content.length;
  assert.ok(used > 800 && used <= 1024, `the filler takes most of the quota (${used} bytes)`);

  const a = await startTestApp({
    hostname: 'a.halcyon.test',
    postmaster: 'postmaster@a.test',
    domains: [{ name: 'a.test', mailboxes: [{ user: 'sender' }, { user: 'postmaster' }] }],
    routes: { 'b.test': `127.0.0.1:${b.port}` },
    delivery: { queue_scan_interval: '200ms' },
  }, { scheduler: true });
  t.after(() => a.stop());
  const aHold = holdRemoval(a.app.store.recipients);

  const from = 'sender@a.test';
  const to = ['full@b.test', ...others.map((u) => `${u}@b.test`)];
  const id = await submit(a.port, { from, to, content: message(from, to, 'seed scenario') });

  await waitUntil(async () => (await a.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered' || r.state === 'failed'), 'A: every recipient final');
  await waitUntil(() => others.every((u) => halcyonMaildir(b.dataDir, 'b.test', u).length >= 1), 'B: the 4 copies delivered');
  await waitUntil(() => halcyonMaildir(a.dataDir, 'a.test', 'sender').length >= 1, 'A: the DSN in the sender mailbox');

  // A's view: the full mailbox failed with B's reply, the others delivered, each in one attempt.
  const rows = await a.app.store.recipients.getRecipients(id);
  const full = rows.find((r) => r.address === 'full@b.test')!;
  assert.equal(full.state, 'failed');
  assert.equal(full.lastReply?.code, 552);
  assert.equal(full.lastReply?.enhanced, '5.2.2');
  assert.equal(full.lastReply?.command, 'RCPT TO');
  for (const r of rows) assert.equal(r.attempts, 1, `${r.address} tried once`);
  for (const r of rows.filter((x) => x !== full)) assert.equal(r.state, 'delivered', r.address);

  // B's view: exactly one message (one transaction) from A, for the 4 others only.
  const fromA = (await b.app.store.recipients.listMessages({})).filter((m) => m.message.sender === from);
  assert.equal(fromA.length, 1, 'B accepted exactly one transaction from A');
  assert.deepEqual(fromA[0]!.recipients.map((r) => r.address).sort(), others.map((u) => `${u}@b.test`));
  for (const u of others) assert.equal(halcyonMaildir(b.dataDir, 'b.test', u).length, 1, `${u}@b.test has one copy`);
  assert.equal(halcyonMaildir(b.dataDir, 'b.test', 'full').length, 1, 'the full mailbox holds only the filler');

  // A's sender: exactly one DSN, naming only the full mailbox.
  await waitUntil(async () => (await a.app.store.recipients.getRecipients(id)).every((r) => r.state !== 'failed' || r.dsnDone), 'A: report settled');
  const box = halcyonMaildir(a.dataDir, 'a.test', 'sender');
  assert.equal(box.length, 1, 'one DSN');
  const dsn = parseDsn(box[0]!.content);
  assert.deepEqual(dsn.perRecipient.map((g) => g.get('final-recipient')), ['rfc822; full@b.test']);
  assert.equal(dsn.perRecipient[0]!.get('action'), 'failed');
  assert.equal(dsn.perRecipient[0]!.get('status'), '5.2.2');
  assert.match(dsn.perRecipient[0]!.get('diagnostic-code') ?? '', /^smtp; 552 5\.2\.2 /);
  bHold.release();
  aHold.release();
});

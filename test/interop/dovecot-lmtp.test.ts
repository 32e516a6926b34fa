/**
 * Interop: Halcyon delivering over LMTP (RFC 2033) to a real, private
 * Dovecot (dovecot-lmtpd), with the scheduler running as in production.
 *
 * - The seed's scenario: one message for 5 Dovecot users, one of them over
 *   its quota → Dovecot answers after DATA once per recipient, `552 5.2.2`
 *   for that one only; Halcyon fails that recipient alone with Dovecot's own
 *   reply, sends one DSN naming only it, and the other 4 Maildirs hold
 *   exactly one copy each (TCP listener).
 * - `lmtp_rcpt_check_quota = yes`: the refusal comes at RCPT instead (Unix
 *   socket listener), with the same outcome.
 * - `quota_full_tempfail = yes`: a `452 4.2.2` defers that recipient alone;
 *   after the quota is raised and the queue flushed it is delivered once.
 *
 * The client submitting the message is not in [relay] networks: mail for
 * the LMTP-routed domain is taken from anyone, as an MX in front of Dovecot.
 *
 * Evidence is read where a user would look: Dovecot's Maildirs, Halcyon's
 * queue rows and the sender's local Maildir. Skipped with the reason when
 * Dovecot is missing, failed instead under HALCYON_REQUIRE_INTEROP=1.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp } from '../support/halcyon.js';
import { requireDovecot, startDovecot } from '../support/dovecot.js';
import { submit, message, waitUntil, holdRemoval, halcyonMaildir, parseDsn } from '../support/postfix.js';

const SENDER = 'sender@local.test';
const DOMAIN = 'dove.test';
const USERS = ['u1', 'u2', 'full', 'u4', 'u5'];
const RCPTS = USERS.map((u) => `${u}@${DOMAIN}`);
/** Over the 1 KiB quota of the full mailbox by itself. */
const BIG_BODY = `${'Quota test line for Dovecot over LMTP.\r\n'.repeat(60)}`;

function halcyonConfig(route: Record<string, unknown>): Record<string, unknown> {
  return {
    postmaster: 'postmaster@local.test',
    domains: [{ name: 'local.test', mailboxes: [{ user: 'sender' }, { user: 'postmaster' }] }],
    routes: { [DOMAIN]: { protocol: 'lmtp', ...route } },
    // The client is an Internet sender, not a relay client: an LMTP-routed domain is a final destination for it.
    relay: { networks: [] },
    delivery: { queue_scan_interval: '200ms', retry_initial: '1h' },
  };
}

describe('Halcyon → real Dovecot over LMTP', { timeout: 90_000 }, () => {
  test('seed scenario: 5 recipients, one over quota → Dovecot\'s 552 5.2.2 for it alone after DATA, one DSN, 4 single copies', async (t) => {
    if (!requireDovecot(t)) return;
    const dc = await startDovecot({ users: USERS, domain: DOMAIN, quota: { full: '1K' } });
    t.after(() => dc.stop());
    const h = await startTestApp(halcyonConfig({ hosts: [`127.0.0.1:${dc.port}`] }), { scheduler: true });
    t.after(() => h.stop());
    const hold = holdRemoval(h.app.store.recipients);

    const id = await submit(h.port, { from: SENDER, to: RCPTS, content: message(SENDER, RCPTS, 'LMTP seed scenario', BIG_BODY) });
    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered' || r.state === 'failed'),
      'every recipient final in Halcyon');

    const rows = await h.app.store.recipients.getRecipients(id);
    const full = rows.find((r) => r.address === `full@${DOMAIN}`)!;
    assert.equal(full.state, 'failed', JSON.stringify(full.lastReply));
    assert.equal(full.attempts, 1);
    assert.equal(full.lastReply?.code, 552);
    assert.equal(full.lastReply?.enhanced, '5.2.2');
    assert.equal(full.lastReply?.command, 'end of DATA', 'refused after DATA, per recipient (RFC 2033)');
    assert.equal(full.lastReply?.host, `127.0.0.1[127.0.0.1]:${dc.port}`);
    // Dovecot's own text, naming the recipient.
    assert.match(full.lastReply?.text ?? '', new RegExp(`^<full@${DOMAIN}> Quota exceeded`));
    for (const r of rows.filter((x) => x !== full)) {
      assert.equal(r.state, 'delivered', `${r.address}: ${JSON.stringify(r.lastReply)}`);
      assert.equal(r.attempts, 1);
      assert.match(r.lastReply?.text ?? '', /Saved/);
    }
    assert.equal(dc.maildir('full').length, 0, 'nothing in the full mailbox');
    for (const u of USERS.filter((x) => x !== 'full')) assert.equal(dc.maildir(u).length, 1, `${u} holds exactly one copy`);

    hold.release();
    await waitUntil(() => halcyonMaildir(h.dataDir, 'local.test', 'sender').length >= 1, 'a DSN in the sender mailbox');
    await waitUntil(async () => (await h.app.store.messages.getMessage(id)) === undefined, 'the original removed once reported');
    const box = halcyonMaildir(h.dataDir, 'local.test', 'sender');
    assert.equal(box.length, 1, 'exactly one DSN');
    const dsn = parseDsn(box[0]!.content);
    assert.deepEqual(dsn.perRecipient.map((g) => g.get('final-recipient')), [`rfc822; full@${DOMAIN}`]);
    const only = dsn.perRecipient[0]!;
    assert.equal(only.get('action'), 'failed');
    assert.equal(only.get('status'), '5.2.2');
    assert.equal(only.get('diagnostic-code'), `smtp; 552 5.2.2 ${full.lastReply!.text}`);
    // Still exactly one copy each: no resend after the DSN.
    for (const u of USERS.filter((x) => x !== 'full')) assert.equal(dc.maildir(u).length, 1, `${u} still one copy`);
  });

  test('lmtp_rcpt_check_quota = yes, over the Unix socket: the full mailbox is refused at RCPT, the others delivered once', async (t) => {
    if (!requireDovecot(t)) return;
    const dc = await startDovecot({ users: USERS, domain: DOMAIN, quota: { full: '1K' }, rcptCheckQuota: true });
    t.after(() => dc.stop());
    const h = await startTestApp(halcyonConfig({ socket: dc.socket }), { scheduler: true });
    t.after(() => h.stop());
    // Fill the mailbox first (under a raised quota) so RCPT, which knows no message size, finds it over quota.
    await dc.setQuota('full', '1M');
    const first = await submit(h.port, { from: SENDER, to: [`full@${DOMAIN}`], content: message(SENDER, [`full@${DOMAIN}`], 'filler', BIG_BODY) });
    await waitUntil(() => dc.maildir('full').length === 1, 'the filler in the full mailbox');
    await waitUntil(async () => (await h.app.store.messages.getMessage(first)) === undefined, 'the filler done');
    await dc.setQuota('full', '1K');
    const hold = holdRemoval(h.app.store.recipients);

    const id = await submit(h.port, { from: SENDER, to: RCPTS, content: message(SENDER, RCPTS, 'LMTP rcpt check', 'small') });
    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered' || r.state === 'failed'),
      'every recipient final in Halcyon');
    const rows = await h.app.store.recipients.getRecipients(id);
    const full = rows.find((r) => r.address === `full@${DOMAIN}`)!;
    assert.equal(full.state, 'failed', JSON.stringify(full.lastReply));
    assert.equal(full.lastReply?.code, 552);
    assert.equal(full.lastReply?.enhanced, '5.2.2');
    assert.equal(full.lastReply?.command, 'RCPT TO');
    assert.equal(full.lastReply?.host, `unix:${dc.socket}`);
    for (const r of rows.filter((x) => x !== full)) assert.equal(r.state, 'delivered', `${r.address}: ${JSON.stringify(r.lastReply)}`);
    assert.equal(dc.maildir('full').length, 1, 'only the filler');
    for (const u of USERS.filter((x) => x !== 'full')) assert.equal(dc.maildir(u).length, 1, `${u} holds exactly one copy`);
    hold.release();
    await waitUntil(() => halcyonMaildir(h.dataDir, 'local.test', 'sender').length === 1, 'one DSN for the refused mailbox');
  });

  test('quota_full_tempfail = yes: 452 4.2.2 defers that recipient alone; delivered once after the quota is raised and the queue flushed', async (t) => {
    if (!requireDovecot(t)) return;
    const dc = await startDovecot({ users: USERS, domain: DOMAIN, quota: { full: '1K' }, quotaTempfail: true });
    t.after(() => dc.stop());
    const h = await startTestApp(halcyonConfig({ hosts: [`127.0.0.1:${dc.port}`] }), { scheduler: true });
    t.after(() => h.stop());
    const hold = holdRemoval(h.app.store.recipients);

    const id = await submit(h.port, { from: SENDER, to: RCPTS, content: message(SENDER, RCPTS, 'LMTP tempfail', BIG_BODY) });
    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered' || r.state === 'deferred'),
      'every recipient delivered or deferred');
    let rows = await h.app.store.recipients.getRecipients(id);
    const full = rows.find((r) => r.address === `full@${DOMAIN}`)!;
    assert.equal(full.state, 'deferred');
    assert.equal(full.lastReply?.code, 452);
    assert.equal(full.lastReply?.enhanced, '4.2.2');
    assert.equal(full.lastReply?.command, 'end of DATA');
    assert.equal(rows.filter((r) => r.state === 'delivered').length, 4);
    assert.equal((await h.app.store.gate.getDestination(`route:lmtp:127.0.0.1:${dc.port}`))?.health ?? 'ok', 'ok',
      'a per-recipient 452 puts no backoff on the destination');
    assert.equal(dc.maildir('full').length, 0);

    await dc.setQuota('full', '10M');
    assert.ok((await h.app.store.recipients.flush({ now: Date.now() })) >= 1);
    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id)).every((r) => r.state === 'delivered'), 'the deferred one delivered after the flush')
      .catch(async (err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(await h.app.store.recipients.getRecipients(id))}\n${dc.log()}`); });
    rows = await h.app.store.recipients.getRecipients(id);
    assert.equal(rows.find((r) => r.address === `full@${DOMAIN}`)!.attempts, 2);
    for (const u of USERS) assert.equal(dc.maildir(u).length, 1, `${u} holds exactly one copy`);
    hold.release();
    assert.equal(halcyonMaildir(h.dataDir, 'local.test', 'sender').length, 0, 'no DSN');
  });
});

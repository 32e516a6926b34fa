/**
 * Recipient verification against a real, private Dovecot over LMTP (the
 * issue #22 scenario: Halcyon as the MX in front of Dovecot, following
 * docs/dovecot.md, with verification on by default for the LMTP route).
 *
 * - an unknown user gets 550 5.1.1 at RCPT with Dovecot's own text, the known
 *   user in the same transaction is delivered once, and no DSN is ever sent;
 *   the answer is cached (a second RCPT costs no probe), also across
 *   concurrent sessions asking for the same address (one probe);
 * - with Dovecot down the RCPT hears 450 4.1.1, not 250: nothing is queued,
 *   so nothing can bounce later; with unreachable = "accept" it hears 250.
 *
 * The client is an Internet sender (not in [relay] networks). Evidence: the
 * SMTP replies, Dovecot's Maildirs, Halcyon's queue and the sender's Maildir.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp } from '../support/halcyon.js';
import { requireDovecot, startDovecot } from '../support/dovecot.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { halcyonMaildir, message, waitUntil } from '../support/postfix.js';
import { freeLoopbackPort } from '../support/postfix-instance.js';

const SENDER = 'sender@local.test';
const DOMAIN = 'dove.test';

function config(route: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    postmaster: 'postmaster@local.test',
    domains: [{ name: 'local.test', mailboxes: [{ user: 'sender' }, { user: 'postmaster' }] }],
    routes: { [DOMAIN]: { protocol: 'lmtp', ...route } },
    relay: { networks: [] },
    delivery: { queue_scan_interval: '200ms' },
    ...extra,
  };
}

async function session(port: number): Promise<RawSmtpClient> {
  const c = await RawSmtpClient.connect(port);
  assert.equal((await c.read()).code, 220);
  await c.expect('EHLO client.test', 250);
  await c.expect(`MAIL FROM:<${SENDER}>`, 250);
  return c;
}

const line = (r: { code: number; enhanced?: string; lines: readonly string[] }): string => `${r.code} ${r.enhanced ?? ''} ${r.lines.join(' ')}`;

describe('recipient verification → real Dovecot over LMTP', { timeout: 90_000 }, () => {
  test('unknown user: 550 5.1.1 at RCPT with Dovecot\'s text, known user delivered once, no DSN; the answer is cached', async (t) => {
    if (!requireDovecot(t)) return;
    const dc = await startDovecot({ users: ['alice'], domain: DOMAIN });
    t.after(() => dc.stop());
    const h = await startTestApp(config({ hosts: [`127.0.0.1:${dc.port}`] }), { scheduler: true });
    t.after(() => h.stop());

    const c = await session(h.port);
    const ghost = await c.cmd(`RCPT TO:<ghost@${DOMAIN}>`, 15_000);
    assert.equal(ghost.code, 550, line(ghost));
    assert.equal(ghost.enhanced, '5.1.1');
    assert.match(ghost.lines.join(' '), /ghost@dove\.test.*Recipient address rejected: undeliverable address: host .* said: 550 5\.1\.1 .*User doesn't exist/);
    const alice = await c.cmd(`RCPT TO:<alice@${DOMAIN}>`, 15_000);
    assert.equal(alice.code, 250, line(alice));
    await c.expect('DATA', 354);
    c.write(message(SENDER, [`alice@${DOMAIN}`, `ghost@${DOMAIN}`], 'verify dovecot'));
    const done = await c.cmd('.');
    assert.equal(done.code, 250, line(done));
    // The same unknown address again: answered from the cache, no new probe.
    await c.expect(`MAIL FROM:<${SENDER}>`, 250);
    const again = await c.cmd(`RCPT TO:<ghost@${DOMAIN}>`);
    assert.equal(again.code, 550, line(again));
    assert.equal(h.app.verifier.stats.probes, 2, 'one probe per address: ghost and alice');
    c.close();

    await waitUntil(() => dc.maildir('alice').length === 1, 'alice has the message');
    await waitUntil(async () => (await h.app.store.recipients.counts()).messages === 0, 'the queue empty (delivered and removed)');
    assert.equal(dc.maildir('alice').length, 1, 'exactly one copy');
    assert.equal(halcyonMaildir(h.dataDir, 'local.test', 'sender').length, 0, 'no DSN to the sender');
    const cached = await h.app.store.verifications.getVerification(`ghost@${DOMAIN}`, Date.now());
    assert.equal(cached?.verdict, 'absent');
    assert.equal(cached?.reply.code, 550);
    assert.equal((await h.app.store.verifications.getVerification(`alice@${DOMAIN}`, Date.now()))?.verdict, 'exists');
    const metrics = await h.app.metrics.text();
    assert.match(metrics, /halcyon_verify_probes_total\{verdict="absent",node="[^"]*"\} 1\n/);
    assert.match(metrics, /halcyon_verify_probes_total\{verdict="exists",node="[^"]*"\} 1\n/);
    assert.match(metrics, /halcyon_messages_rejected_total\{reason="unknown_user",node="[^"]*"\} 2\n/);
  });

  test('concurrent sessions asking for one unknown address share one probe', async (t) => {
    if (!requireDovecot(t)) return;
    const dc = await startDovecot({ users: ['alice'], domain: DOMAIN });
    t.after(() => dc.stop());
    const h = await startTestApp(config({ hosts: [`127.0.0.1:${dc.port}`] }));
    t.after(() => h.stop());
    const clients = await Promise.all(Array.from({ length: 8 }, () => session(h.port)));
    const replies = await Promise.all(clients.map((c) => c.cmd(`RCPT TO:<nobody@${DOMAIN}>`, 15_000)));
    for (const c of clients) c.close();
    assert.deepEqual(replies.map((r) => r.code), Array(8).fill(550));
    assert.equal(h.app.verifier.stats.probes, 1, 'eight RCPTs, one probe');
    assert.equal(h.app.verifier.stats.shared + h.app.verifier.stats.cacheHits, 7);
  });

  test('Dovecot down: 450 4.1.1 at RCPT (not 250), nothing queued, no bounce; unreachable = "accept" takes it', async (t) => {
    const dead = await freeLoopbackPort();
    const h = await startTestApp(config({ hosts: [`127.0.0.1:${dead}`] }));
    t.after(() => h.stop());
    const c = await session(h.port);
    const r = await c.cmd(`RCPT TO:<alice@${DOMAIN}>`, 15_000);
    assert.equal(r.code, 450, line(r));
    assert.equal(r.enhanced, '4.1.1');
    assert.match(r.lines.join(' '), /unverified address: host .*127\.0\.0\.1.*connect failed \(ECONNREFUSED\)/);
    const data = await c.cmd('DATA');
    assert.equal(data.code, 554, 'no valid recipients: nothing to take');
    c.close();
    assert.deepEqual((await h.app.store.recipients.listMessages({})).map((e) => e.message.id), [], 'nothing queued: nothing can bounce later');
    assert.equal(halcyonMaildir(h.dataDir, 'local.test', 'sender').length, 0);
    assert.equal(await h.app.store.verifications.getVerification(`alice@${DOMAIN}`, Date.now()), undefined, 'a failure is not cached');

    const lenient = await startTestApp(config({ hosts: [`127.0.0.1:${dead}`] }, { recipient_verification: { unreachable: 'accept' } }));
    t.after(() => lenient.stop());
    const c2 = await session(lenient.port);
    const ok = await c2.cmd(`RCPT TO:<alice@${DOMAIN}>`, 15_000);
    assert.equal(ok.code, 250, line(ok));
    c2.close();
  });
});

/**
 * Recipient verification against a real, private Postfix as the next hop of
 * a relay route (`verify = "probe"` on an SMTP route).
 *
 * - an unknown user gets 550 5.1.1 at RCPT with Postfix's own text and no
 *   DSN is sent; the known user is delivered once; Postfix queued exactly
 *   one message (the probes never reached DATA);
 * - a 5.7.1 policy refusal and a 5.2.2 full mailbox at the probe's RCPT do
 *   not make Halcyon refuse the address (only a failure about the address
 *   does);
 * - with Postfix stopped, a RCPT for an address not yet known hears 450
 *   4.1.1 and nothing is queued, while a cached answer still serves.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp } from '../support/halcyon.js';
import { POSTFIX, requirePeer, startPostfix, halcyonMaildir, message, waitUntil } from '../support/postfix.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const SENDER = 'sender@local.test';

function config(port: number): Record<string, unknown> {
  return {
    postmaster: 'postmaster@local.test',
    domains: [{ name: 'local.test', mailboxes: [{ user: 'sender' }, { user: 'postmaster' }] }],
    routes: { 'example.test': { hosts: [`127.0.0.1:${port}`], verify: 'probe' } },
    delivery: { tls: 'none', queue_scan_interval: '200ms' },
  };
}

const line = (r: { code: number; enhanced?: string; lines: readonly string[] }): string => `${r.code} ${r.enhanced ?? ''} ${r.lines.join(' ')}`;

describe('recipient verification → real Postfix (relay route)', { timeout: 120_000 }, () => {
  test('unknown user 550 at RCPT with Postfix\'s text, no DSN; known user delivered; policy and full-mailbox refusals do not refuse; Postfix down → 450', async (t) => {
    if (!requirePeer(t, POSTFIX)) return;
    const pf = await startPostfix({
      virtualMailboxes: ['a1', 'a2', 'a3', 'full', 'blocked'],
      accessTable: { 'full@example.test': '552 5.2.2 Mailbox full', 'blocked@example.test': '554 5.7.1 Service unavailable; client host blocked (low reputation)' },
    });
    let pfStopped = false;
    t.after(() => (pfStopped ? undefined : pf.stop()));
    const h = await startTestApp(config(pf.port), { scheduler: true });
    t.after(() => h.stop());

    const c = await RawSmtpClient.connect(h.port);
    assert.equal((await c.read()).code, 220);
    await c.expect('EHLO client.test', 250);
    await c.expect(`MAIL FROM:<${SENDER}>`, 250);
    const ghost = await c.cmd('RCPT TO:<ghost@example.test>', 15_000);
    assert.equal(ghost.code, 550, line(ghost));
    assert.equal(ghost.enhanced, '5.1.1');
    assert.match(ghost.lines.join(' '), new RegExp(`undeliverable address: host 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${pf.port} said: 550 5\\.1\\.1 <ghost@example\\.test>: Recipient address rejected: User unknown in virtual mailbox table`));
    for (const [who, why] of [['full', '5.2.2: the mailbox exists'], ['blocked', '5.7.1: says nothing about the address']] as const) {
      const r = await c.cmd(`RCPT TO:<${who}@example.test>`, 15_000);
      assert.equal(r.code, 250, `${who} (${why}): ${line(r)}`);
    }
    await c.expect('RSET', 250);
    await c.expect(`MAIL FROM:<${SENDER}>`, 250);
    const a1 = await c.cmd('RCPT TO:<a1@example.test>', 15_000);
    assert.equal(a1.code, 250, line(a1));
    const again = await c.cmd('RCPT TO:<ghost@example.test>');
    assert.equal(again.code, 550, 'from the cache');
    await c.expect('DATA', 354);
    c.write(message(SENDER, ['a1@example.test'], 'verify postfix'));
    const done = await c.cmd('.');
    assert.equal(done.code, 250, line(done));

    await waitUntil(() => pf.maildir('a1').length === 1, 'a1 has the message');
    await waitUntil(async () => (await h.app.store.recipients.counts()).messages === 0, 'the queue empty');
    assert.equal(pf.maildir('a1').length, 1, 'exactly one copy');
    assert.equal(halcyonMaildir(h.dataDir, 'local.test', 'sender').length, 0, 'no DSN to the sender');
    const log = pf.maillog();
    assert.equal(pf.transactions().size, 1, 'Postfix queued one message: the probes never sent DATA');
    assert.equal((log.match(/NOQUEUE: reject: RCPT from .*<ghost@example\.test>/g) ?? []).length, 1, 'one probe for ghost@, however often it was asked');
    assert.equal(h.app.verifier.stats.probes, 4, 'ghost, full, blocked, a1');

    await pf.stop();
    pfStopped = true;
    await c.expect(`MAIL FROM:<${SENDER}>`, 250);
    const down = await c.cmd('RCPT TO:<a2@example.test>', 15_000);
    assert.equal(down.code, 450, line(down));
    assert.equal(down.enhanced, '4.1.1');
    const cached = await c.cmd('RCPT TO:<a1@example.test>');
    assert.equal(cached.code, 250, 'a cached answer still serves while the next hop is down');
    await c.expect('RSET', 250);
    c.close();
    assert.deepEqual((await h.app.store.recipients.listMessages({})).map((e) => e.message.id), [], 'nothing queued for a2: nothing can bounce later');
  });
});

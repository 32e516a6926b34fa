/**
 * End to end: local mailbox quotas as an SMTP client sees them. A real
 * Halcyon (scheduler running) has sender-facing local domains with a 4k
 * mailbox; messages are sent over SMTP, each delivered to the Maildir before
 * the next, until a RCPT TO is refused for the full mailbox.
 *
 * Checks the exact reply (552 5.2.2 by default, 452 4.2.2 with
 * over_quota_reply = "452"), that the refusal comes exactly when the
 * Maildir's usage reached the quota (not before, not later), and that the
 * refused message left nothing behind; without SIZE, that every message a
 * RCPT accepted is delivered. It does not test quota arithmetic
 * in isolation (src/local has unit tests for that).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { message, waitUntil, halcyonMaildir } from '../support/postfix.js';

const QUOTA = 4096;

describe('local mailbox quota over SMTP', { timeout: 60_000 }, () => {
  let h: TestApp;
  before(async () => {
    h = await startTestApp({
      domains: [
        { name: 'hard.test', mailboxes: [{ user: 'q', quota: '4k' }] },
        { name: 'soft.test', mailboxes: [{ user: 'q', quota: '4k' }], over_quota_reply: '452' },
        { name: 'hard2.test', mailboxes: [{ user: 'q', quota: '4k' }] },
        { name: 'soft2.test', mailboxes: [{ user: 'q', quota: '4k' }], over_quota_reply: '452' },
      ],
      // The senders' domain goes nowhere: the bounces the no-SIZE case provokes must not reach DNS.
      routes: { 'client.test': '127.0.0.1:9' },
      delivery: { queue_scan_interval: '200ms' },
    }, { scheduler: true });
  });
  after(async () => h?.stop());

  /** Sends ~1 KB messages to q@domain until RCPT is refused; returns that reply and how many were accepted. */
  async function fillUntilRefused(domain: string, declareSize: boolean) {
    const rcpt = `q@${domain}`;
    const usage = () => halcyonMaildir(h.dataDir, domain, 'q').reduce((n, f) => n + statSync(f.path).size, 0);
    for (let i = 0; i < 20; i++) {
      const c = await RawSmtpClient.connect(h.port);
      try {
        await c.read();
        await c.expect('EHLO client.test', 250);
        const content = message('someone@client.test', [rcpt], `quota ${domain} ${declareSize} ${i}`, 'x'.repeat(900));
        await c.expect(`MAIL FROM:<someone@client.test>${declareSize ? ` SIZE=${content.length}` : ''}`, 250);
        const before = usage();
        const r = await c.cmd(`RCPT TO:<${rcpt}>`);
        if (r.code !== 250) return { reply: r, accepted: i, usageAtRefusal: before, size: content.length };
        await c.expect('DATA', 354);
        c.write(content);
        const done = await c.cmd('.');
        assert.equal(done.code, 250);
        await c.cmd('QUIT');
      } finally {
        c.close();
      }
      // Every message RCPT accepted must reach the mailbox (a 250 followed by a bounce is what quotas at RCPT exist to avoid).
      await waitUntil(() => halcyonMaildir(h.dataDir, domain, 'q').length === i + 1, `accepted message ${i} in the Maildir of ${rcpt}`, 20_000);
    }
    throw new Error(`${rcpt} never refused a RCPT in 20 messages`);
  }

  const cases = [['hard.test', 552, '5.2.2'], ['soft.test', 452, '4.2.2']] as const;
  for (const [domain, code, enhanced] of cases) {
    test(`${domain}, SIZE declared: a full mailbox → ${code} ${enhanced} at RCPT, exactly when the next message would not fit`, async () => {
      const { reply, accepted, usageAtRefusal, size } = await fillUntilRefused(domain, true);
      assert.equal(reply.code, code, reply.lines.join(' '));
      assert.equal(reply.enhanced, enhanced);
      const files = halcyonMaildir(h.dataDir, domain, 'q');
      assert.equal(files.length, accepted, 'the refused message left nothing in the Maildir');
      assert.ok(accepted >= 2, `several messages fit in ${QUOTA} bytes (got ${accepted})`);
      assert.ok(usageAtRefusal + size > QUOTA, `refused only when it would not fit (usage ${usageAtRefusal} + ${size})`);
      const lastSize = statSync(files[files.length - 1]!.path).size;
      assert.ok(usageAtRefusal - lastSize + size <= QUOTA, `the one before fitted and was accepted (usage then ${usageAtRefusal - lastSize})`);
    });
  }

  for (const [domain, code, enhanced] of cases) {
    test(`${domain}, no SIZE: RCPT is refused with ${code} ${enhanced} before a message is accepted and then bounced`, async () => {
      // Separate mailboxes: the SIZE test above already filled q@.
      const { reply } = await fillUntilRefused(domain.replace('.test', '2.test'), false);
      assert.equal(reply.code, code);
      assert.equal(reply.enhanced, enhanced);
    });
  }
});

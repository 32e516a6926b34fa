/**
 * The suppression list over time (a fake clock, test/support/fake-clock; the
 * scheduler driven by hand): an address that hard-bounced is refused at RCPT
 * while its entry lasts (`suppression.ttl`, here 1 day) and taken again once
 * it has expired — the remote then sees its RCPT again — and the
 * housekeeping purges expired entries from the list (the test mail comes
 * from <> so no DSN of its own lands on the list). With
 * `suppression.enabled = false` nothing is suppressed at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../support/fake-clock.js';
import { rcptsFor, startRemote, type Remote } from '../support/remote-smtp.js';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { rcptReply } from '../support/smtp-client.js';
import { message, submit } from '../support/postfix.js';

const HOUR = 3_600_000;

async function world(suppression: Record<string, unknown>): Promise<{ remote: Remote; h: TestApp; clock: FakeClock }> {
  const remote = await startRemote({ extensions: { enhancedStatusCodes: true }, rcpt: (r) => (r.startsWith('gone') ? `550 5.1.1 <${r}>: User unknown` : undefined) });
  const clock = new FakeClock(Date.UTC(2030, 0, 1));
  const h = await startTestApp({ routes: { 'remote.test': `127.0.0.1:${remote.port}` }, delivery: { tls: 'none' }, suppression }, { clock: clock.now });
  return { remote, h, clock };
}

test('an entry lasts suppression.ttl: refused while it lasts, tried again after, purged by the housekeeping', { timeout: 60_000 }, async () => {
  const { remote, h, clock } = await world({ ttl: '1d' });
  try {
    await submit(h.port, { from: '', to: ['gone@remote.test'], content: message('sender@client.test', ['gone@remote.test'], 'expiry one') });
    await h.app.qmgr.runOnce();
    assert.equal(rcptsFor(remote, 'gone@remote.test'), 1);
    const [entry] = await h.app.store.suppressions.listSuppressions({});
    assert.deepEqual([entry?.address, entry?.since, entry?.until], ['gone@remote.test', clock.now(), clock.now() + 24 * HOUR]);

    clock.advance(23 * HOUR);
    const during = await rcptReply(h.port, 'gone@remote.test');
    assert.equal(during.code, 550);
    assert.match(during.text, /recipient suppressed since 2030-01-01T00:00:00Z: 550 5\.1\.1 <gone@remote\.test>: User unknown/);

    // An operator's entry of one hour, to see the purge take it.
    await h.app.admin.suppress({ address: 'short@remote.test', ttl: '1h' });
    clock.advance(2 * HOUR); // 25 h after the bounce: both entries have expired
    assert.equal((await rcptReply(h.port, 'gone@remote.test')).code, 250, 'taken again once the entry expired');
    await h.app.qmgr.runOnce(); // housekeeping purges the expired entries
    assert.deepEqual(await h.app.store.suppressions.listSuppressions({}), []);

    // Mail to it goes out again; the remote's new 5.1.1 suppresses it anew, from now.
    await submit(h.port, { from: '', to: ['gone@remote.test'], content: message('sender@client.test', ['gone@remote.test'], 'expiry two') });
    await h.app.qmgr.runOnce();
    assert.equal(rcptsFor(remote, 'gone@remote.test'), 2);
    const again = await h.app.store.suppressions.listSuppressions({});
    assert.deepEqual(again.map((e) => [e.address, e.since]), [['gone@remote.test', clock.now()]]);
  } finally {
    await h.stop();
    await remote.close();
  }
});

test('suppression.enabled = false: a hard bounce suppresses nothing and the next RCPT is taken', { timeout: 60_000 }, async () => {
  const { remote, h } = await world({ enabled: false });
  try {
    await submit(h.port, { from: '', to: ['gone@remote.test'], content: message('sender@client.test', ['gone@remote.test'], 'disabled') });
    await h.app.qmgr.runOnce();
    assert.equal((await h.app.store.recipients.listMessages({})).flatMap((m) => m.recipients).find((r) => r.address === 'gone@remote.test')?.state, 'failed');
    assert.deepEqual(await h.app.store.suppressions.listSuppressions({}), []);
    assert.equal((await rcptReply(h.port, 'gone@remote.test')).code, 250);
  } finally {
    await h.stop();
    await remote.close();
  }
});

/**
 * The VerifyCache contract (queue/verify-cache), for every implementation:
 * an entry reads back as written until it expires; a newer answer replaces
 * it; two nodes on one database see each other's entries (the cache is
 * shared); expired rows are gone for lookups and the clean-up removes them
 * in bounded slices; an operator's delete forgets one address.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { VerifyEntry } from '../../../src/queue/verify-cache.js';
import { T0, withQueue, type Implementation } from './harness.js';

const DAY = 86_400_000;

function entry(address: string, verdict: VerifyEntry['verdict'], over: Partial<VerifyEntry> = {}): VerifyEntry {
  const exists = verdict === 'exists';
  return {
    address, verdict,
    reply: exists
      ? { code: 250, enhanced: '2.1.5', text: 'OK', host: 'mx.x.test[127.0.0.1]:25', command: 'RCPT TO' }
      : { code: 550, enhanced: '5.1.1', text: `<${address}> User doesn't exist`, host: 'mx.x.test[127.0.0.1]:25', command: 'RCPT TO' },
    checkedAt: T0,
    refreshAt: T0 + (exists ? 7 * DAY : 3 * 3_600_000),
    expiresAt: T0 + (exists ? 31 * DAY : 3 * DAY),
    ...over,
  };
}

export function verifyCacheContract(impl: Implementation): void {
  describe(`VerifyCache contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('an entry reads back as written, until it expires; an unknown address has none', () => withQueue(impl, async (q) => {
      const c = q.queue.verifications;
      assert.equal(await c.getVerification('nobody@x.test', T0), undefined);
      const e = entry('bob@x.test', 'absent');
      await c.putVerification(e);
      assert.deepEqual(await c.getVerification('bob@x.test', T0 + 1), e);
      assert.deepEqual(await c.getVerification('bob@x.test', e.expiresAt - 1), e, 'still there past its refresh time');
      assert.equal(await c.getVerification('bob@x.test', e.expiresAt), undefined, 'gone once expired');
    }));

    test('a newer answer replaces the row; another node on the same database reads it', () => withQueue(impl, async (q) => {
      const other = await q.open();
      await q.queue.verifications.putVerification(entry('carol@x.test', 'absent'));
      assert.equal((await other.verifications.getVerification('carol@x.test', T0))?.verdict, 'absent');
      const later = entry('carol@x.test', 'exists', { checkedAt: T0 + DAY, refreshAt: T0 + 8 * DAY, expiresAt: T0 + 32 * DAY });
      await other.verifications.putVerification(later);
      assert.deepEqual(await q.queue.verifications.getVerification('carol@x.test', T0 + DAY), later);
      assert.deepEqual((await q.queue.verifications.listVerifications(T0 + DAY, 10)).map((v) => v.address), ['carol@x.test'], 'one row per address');
    }));

    test('expired rows are removed in bounded slices; list shows only live ones, by address; delete forgets one', () => withQueue(impl, async (q) => {
      const c = q.queue.verifications;
      for (const a of ['e1@x.test', 'e2@x.test', 'e3@x.test']) await c.putVerification(entry(a, 'absent', { expiresAt: T0 + 10 }));
      await c.putVerification(entry('live-b@x.test', 'exists'));
      await c.putVerification(entry('live-a@x.test', 'absent'));
      assert.deepEqual((await c.listVerifications(T0 + 10, 100)).map((v) => v.address), ['live-a@x.test', 'live-b@x.test']);
      assert.equal(await c.removeExpiredVerifications(T0 + 10, 2), 2);
      assert.equal(await c.removeExpiredVerifications(T0 + 10, 2), 1);
      assert.equal(await c.removeExpiredVerifications(T0 + 10, 2), 0);
      assert.equal(await c.deleteVerification('live-a@x.test'), true);
      assert.equal(await c.deleteVerification('live-a@x.test'), false);
      assert.deepEqual((await c.listVerifications(T0, 100)).map((v) => v.address), ['live-b@x.test']);
    }));
  });
}

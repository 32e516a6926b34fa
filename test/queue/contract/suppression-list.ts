/**
 * The SuppressionList contract (queue/suppression), for every implementation:
 * a failure recorded with `suppressUntil` puts its address on the list in the
 * same commit (an outcome that is not applied puts nothing), with the reply,
 * class and message that caused it; lookups match any case of the address
 * and ignore expired entries; a newer entry replaces an older one, never the
 * reverse; remove, list (search, in force only) and the purge; a second
 * handle (another node) sees the same list; a suppressed outcome writes a
 * `suppressed` event, not a `bounced` one.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HalcyonEvent } from '../../../src/queue/event.js';
import type { LastReply } from '../../../src/queue/model.js';
import type { SuppressionEntry } from '../../../src/queue/suppression.js';
import { message, T0, withQueue, type Implementation } from './harness.js';

const DAY = 86_400_000;
const unknown: LastReply = { code: 550, enhanced: '5.1.1', text: '<Bob@X.test>: User unknown', host: 'mx.x.test[127.0.0.1]:25', command: 'RCPT TO', class: 'InvalidRecipient' };

const entry = (address: string, over: Partial<SuppressionEntry> = {}): SuppressionEntry => ({
  address, class: 'InvalidRecipient', reply: { code: 550, enhanced: '5.1.1', text: 'added by hand', ours: true }, source: 'admin', since: T0, until: T0 + 30 * DAY, ...over,
});

export function suppressionListContract(impl: Implementation): void {
  describe(`SuppressionList contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('a failure recorded with suppressUntil suppresses its address in the same commit; others do not', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([
        { address: 'Bob@X.test', destination: 'x.test' }, { address: 'full@x.test', destination: 'x.test' }, { address: 'gone@x.test', destination: 'x.test' },
      ]));
      const [bob, full, gone] = await q.queue.recipients.claimDue({ now: T0, limit: 10, owner: 'node-a', leaseUntil: T0 + 60_000 });
      // `gone` is not leased to node-b: its outcome is ignored, and so is its suppression.
      await q.queue.recipients.recordOutcomes([
        { recipientId: bob!.id, outcome: { kind: 'failed', reply: unknown, suppressUntil: T0 + 30 * DAY } },
        { recipientId: full!.id, outcome: { kind: 'failed', reply: { code: 552, enhanced: '5.2.2', text: 'full', class: 'QuotaIssues' } } },
      ], T0, 'node-a');
      assert.deepEqual(await q.queue.recipients.recordOutcomes([
        { recipientId: gone!.id, outcome: { kind: 'failed', reply: unknown, suppressUntil: T0 + DAY } },
      ], T0, 'node-b'), []);
      const found = await q.queue.suppressions.suppressed(['bob@x.test', 'BOB@x.TEST', 'full@x.test', 'gone@x.test'], T0 + 1);
      assert.deepEqual([...found.keys()], ['bob@x.test']);
      assert.deepEqual(found.get('bob@x.test'), {
        address: 'Bob@X.test', class: 'InvalidRecipient', reply: unknown, source: 'bounce', queueId: id, since: T0, until: T0 + 30 * DAY,
      });
    }));

    test('expired entries are not in force, and the purge removes them', () => withQueue(impl, async (q) => {
      await q.queue.suppressions.suppress([entry('a@x.test', { until: T0 + 1000 }), entry('b@x.test')]);
      assert.equal((await q.queue.suppressions.suppressed(['a@x.test'], T0 + 999)).size, 1);
      assert.equal((await q.queue.suppressions.suppressed(['a@x.test'], T0 + 1000)).size, 0);
      assert.deepEqual((await q.queue.suppressions.listSuppressions({ now: T0 + 1000 })).map((e) => e.address), ['b@x.test']);
      assert.deepEqual((await q.queue.suppressions.listSuppressions({})).map((e) => e.address), ['a@x.test', 'b@x.test']);
      assert.equal(await q.queue.suppressions.purgeSuppressions(T0 + 1000), 1);
      assert.deepEqual((await q.queue.suppressions.listSuppressions({})).map((e) => e.address), ['b@x.test']);
    }));

    test('a newer entry replaces an older one, an older one never a newer', () => withQueue(impl, async (q) => {
      await q.queue.suppressions.suppress([entry('a@x.test', { since: T0 + 10, class: 'BadDomain' })]);
      await q.queue.suppressions.suppress([entry('A@x.test', { since: T0, class: 'InactiveMailbox' })]);
      assert.equal((await q.queue.suppressions.suppressed(['a@x.test'], T0 + 20)).get('a@x.test')?.class, 'BadDomain');
      await q.queue.suppressions.suppress([entry('A@x.test', { since: T0 + 30, class: 'InactiveMailbox', until: T0 + 60 * DAY })]);
      const e = (await q.queue.suppressions.suppressed(['a@x.test'], T0 + 40)).get('a@x.test');
      assert.deepEqual([e?.address, e?.class, e?.until], ['A@x.test', 'InactiveMailbox', T0 + 60 * DAY]);
    }));

    test('remove, search and limit; a second node sees the same list', () => withQueue(impl, async (q) => {
      await q.queue.suppressions.suppress([entry('one@a.test'), entry('two@a.test'), entry('three@b.test')]);
      assert.deepEqual((await q.queue.suppressions.listSuppressions({ q: 'A.TEST' })).map((e) => e.address), ['one@a.test', 'two@a.test']);
      assert.equal((await q.queue.suppressions.listSuppressions({ limit: 2 })).length, 2);
      const other = await q.open();
      assert.equal((await other.suppressions.suppressed(['three@b.test'], T0)).size, 1);
      assert.equal(await other.suppressions.unsuppress(['THREE@b.test', 'nobody@b.test']), 1);
      assert.equal((await q.queue.suppressions.suppressed(['three@b.test'], T0)).size, 0);
      assert.equal(await q.queue.suppressions.unsuppress([]), 0);
    }));

    test('a suppressed failure writes a suppressed event (with its class), not a bounced one', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([{ address: 'bob@x.test', destination: 'x.test' }]));
      const [bob] = await q.queue.recipients.claimDue({ now: T0, limit: 10, owner: 'node-a', leaseUntil: T0 + 60_000 });
      const reply: LastReply = { code: 550, enhanced: '5.1.1', text: '<bob@x.test>: recipient suppressed since 2023-11-14T22:13:20Z: 550 5.1.1 User unknown', command: 'suppression', ours: true, class: 'InvalidRecipient' };
      await q.queue.recipients.recordOutcomes([{ recipientId: bob!.id, outcome: { kind: 'failed', reply, suppressed: true } }], T0, 'node-a');
      const rows = await q.queue.events.claimEvents('all', { now: T0, limit: 100, owner: 'r', leaseUntil: T0 + 1000 });
      const events = rows.map((r) => JSON.parse(r.body) as HalcyonEvent).filter((e) => e.type !== 'received');
      assert.deepEqual(events.map((e) => [e.type, e.queue_id, e.recipient, e.class, e.reply?.phase]), [['suppressed', id, 'bob@x.test', 'InvalidRecipient', 'suppression']]);
      assert.deepEqual(await q.queue.events.claimEvents('bounces', { now: T0, limit: 100, owner: 'r', leaseUntil: T0 + 1000 }), []);
    }));
  });
}

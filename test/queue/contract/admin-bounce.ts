/**
 * The admin bounce contract, for every queue implementation: an
 * administrator's bounce fails the waiting recipients of a message and never
 * a recipient in flight — not even one a node claims between the bounce's
 * read of the message and its write (the race: the admin reads "queued", a
 * node claims and starts delivering, the admin's write lands on the in-flight
 * row and the delivery's 250 is then ignored as "already final").
 *
 * The race is made, not waited for: the queue handed to Admin runs the other
 * node's claim just before the first call of the bounce that is not a read.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../../src/config/schema.js';
import { Admin } from '../../../src/http/admin.js';
import type { Queue } from '../../../src/queue/store.js';
import { message, reply, T0, withQueue, type Implementation } from './harness.js';

/** Calls that only read: everything else is a write, and the hook runs once before the first of those. */
const READS = new Set(['getMessage', 'getBody', 'getRecipients', 'getAttempts', 'listMessages', 'counts', 'shapeCounts', 'senderShapeCounts',
  'nextDueAt', 'getDestination', 'listDestinations']);

/** `queue`, with `beforeFirstWrite` run (and awaited) once, just before the first call that is not a read. */
function racing(queue: Queue, beforeFirstWrite: () => Promise<void>): Queue {
  let fired = false;
  const wrap = <T extends object>(part: T): T => new Proxy(part, {
    get(target, name, receiver) {
      const v = Reflect.get(target, name, receiver) as unknown;
      if (typeof v !== 'function' || typeof name !== 'string' || READS.has(name)) return typeof v === 'function' ? v.bind(target) : v;
      return async (...args: unknown[]) => {
        if (!fired) {
          fired = true;
          await beforeFirstWrite();
        }
        return (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  return { ...queue, messages: wrap(queue.messages), recipients: wrap(queue.recipients), gate: wrap(queue.gate), events: queue.events, health: queue.health, close: () => queue.close() };
}

/** Admin over a queue with only what a bounce needs. */
function adminOver(queue: Queue, clock: { now: number }): Admin {
  return new Admin({ store: queue, clock: () => clock.now, maxMessageSize: () => 0, config: () => ({}) as Config });
}

export function adminBounceContract(impl: Implementation): void {
  describe(`Admin bounce contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('a bounce never fails a recipient claimed between its read and its write; that delivery is recorded', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@y.test', destination: 'y.test' }]));
      const node = await q.open();
      let claimed: number[] = [];
      const admin = adminOver(racing(q.queue, async () => {
        // Another node claims a@x.test now: its delivery starts while the bounce is under way.
        claimed = (await node.recipients.claimDue({ now: T0, limit: 10, owner: 'node-b', leaseUntil: T0 + 60_000, excludeDestinations: ['y.test'] })).map((r) => r.id);
      }), q.clock);
      const result = await admin.bounce(id);
      assert.equal(claimed.length, 1, 'the other node claimed a@x.test during the bounce');
      const during = await q.queue.recipients.getRecipients(id);
      assert.deepEqual(during.map((r) => [r.address, r.state]), [['a@x.test', 'inflight'], ['b@y.test', 'failed']], 'the recipient in flight is not touched');
      assert.deepEqual(result, { bounced: 1, skipped: 1 });
      // The delivery that was running when the bounce came is recorded as it happened.
      assert.deepEqual(await node.recipients.recordOutcomes([{ recipientId: claimed[0]!, outcome: { kind: 'delivered', reply } }], T0 + 1, 'node-b'), claimed);
      const after = await q.queue.recipients.getRecipients(id);
      assert.deepEqual(after.map((r) => [r.address, r.state]), [['a@x.test', 'delivered'], ['b@y.test', 'failed']]);
      assert.deepEqual((await q.queue.recipients.getAttempts(id)).map((a) => [a.recipientId, a.state]).sort(),
        [[claimed[0]!, 'delivered'], [after[1]!.id, 'failed']].sort(), 'one history row each: no "failed" for the delivered recipient');
    }));

    test('a bounce fails every waiting recipient and skips those already in flight', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([
        { address: 'a@x.test', destination: 'x.test' }, { address: 'b@y.test', destination: 'y.test' }, { address: 'c@y.test', destination: 'y.test' },
      ]));
      const [inflight] = await q.queue.recipients.claimDue({ now: T0, limit: 1, owner: 'node-a', leaseUntil: T0 + 60_000, excludeDestinations: ['y.test'] });
      assert.equal(inflight?.address, 'a@x.test');
      const result = await adminOver(q.queue, q.clock).bounce(id);
      assert.deepEqual(result, { bounced: 2, skipped: 1 });
      const rows = await q.queue.recipients.getRecipients(id);
      assert.deepEqual(rows.map((r) => [r.address, r.state]), [['a@x.test', 'inflight'], ['b@y.test', 'failed'], ['c@y.test', 'failed']]);
      assert.equal(rows[1]!.lastReply?.enhanced, '5.0.0');
    }));
  });
}

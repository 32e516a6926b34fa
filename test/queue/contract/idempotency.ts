/**
 * The idempotency key contract (queue/idempotency, MessageStore.enqueueGroup),
 * for every implementation: a key row is stored in the commit of its messages
 * and read back from another node; a second group with a young key is refused
 * whole (HAL_ERR_IDEMPOTENCY_TAKEN) and stores nothing, also when both race
 * (concurrently, and from two nodes); a key older than the TTL is replaced;
 * a group with a message that cannot be stored stores no key; expiry deletes
 * old rows only.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HalcyonError } from '../../../src/errors.js';
import { IDEMPOTENCY_TTL_MS, type IdempotencyRecord } from '../../../src/queue/idempotency.js';
import { message, T0, withQueue, type Implementation } from './harness.js';

const key = (over: Partial<IdempotencyRecord> = {}): IdempotencyRecord => ({
  token: 'app', key: 'k-1', bodyHash: 'h1', state: 'accepted', status: 201, response: '{"queue_id":"X"}', createdAt: T0, ...over,
});
const taken = (e: unknown) => e instanceof HalcyonError && e.code === 'HAL_ERR_IDEMPOTENCY_TAKEN';

export function idempotencyContract(impl: Implementation): void {
  describe(`idempotency keys contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('a group and its key in one commit; the same key again is refused whole; another node sees both', () => withQueue(impl, async (q) => {
      const ids = await q.queue.messages.enqueueGroup([message(), message([{ address: 'c@example.test', destination: 'example.test' }])], key());
      assert.equal(ids.length, 2);
      const other = await q.open();
      assert.deepEqual(await other.idempotency.getIdempotency('app', 'k-1', T0 - IDEMPOTENCY_TTL_MS), key());
      assert.equal(await other.idempotency.getIdempotency('other-token', 'k-1', 0), undefined, 'keys are per token');
      await assert.rejects(other.messages.enqueueGroup([message()], key({ bodyHash: 'h2', createdAt: T0 + 1000 })), taken);
      assert.equal((await other.recipients.counts()).messages, 2, 'the refused group stored nothing');
      assert.equal((await other.idempotency.getIdempotency('app', 'k-1', 0))?.bodyHash, 'h1', 'the first row stays');
      // Another token may use the same key.
      await other.messages.enqueueGroup([message()], key({ token: 'b' }));
      assert.equal((await other.recipients.counts()).messages, 3);
    }));

    test('racing groups with one key, on one node and on two: exactly one is stored', () => withQueue(impl, async (q) => {
      const other = await q.open();
      const tries = [q.queue, other, q.queue, other, q.queue, other].map((h, i) => h.messages.enqueueGroup([message()], key({ response: `r${i}` })));
      const results = await Promise.allSettled(tries);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.ok(results.every((r) => r.status === 'fulfilled' || taken(r.reason)));
      assert.equal((await q.queue.recipients.counts()).messages, 1);
      const won = results.findIndex((r) => r.status === 'fulfilled');
      assert.equal((await q.queue.idempotency.getIdempotency('app', 'k-1', 0))?.response, `r${won}`);
    }));

    test('a key alone (nothing queued) is kept; a row older than the TTL is replaced; expiry removes old rows only', () => withQueue(impl, async (q) => {
      assert.deepEqual(await q.queue.messages.enqueueGroup([], key({ state: 'rejected', status: 400 })), []);
      assert.equal((await q.queue.idempotency.getIdempotency('app', 'k-1', 0))?.state, 'rejected');
      assert.equal((await q.queue.recipients.counts()).messages, 0);
      const later = T0 + IDEMPOTENCY_TTL_MS + 1;
      assert.equal(await q.queue.idempotency.getIdempotency('app', 'k-1', later - IDEMPOTENCY_TTL_MS), undefined, 'too old to count');
      await q.queue.messages.enqueueGroup([message()], key({ createdAt: later, response: 'new' }));
      assert.equal((await q.queue.idempotency.getIdempotency('app', 'k-1', 0))?.response, 'new');
      await q.queue.messages.enqueueGroup([message()], key({ key: 'k-2', createdAt: T0 }));
      assert.equal(await q.queue.idempotency.expireIdempotency(later - IDEMPOTENCY_TTL_MS, 100), 1);
      assert.equal(await q.queue.idempotency.getIdempotency('app', 'k-2', 0), undefined);
      assert.ok(await q.queue.idempotency.getIdempotency('app', 'k-1', 0));
    }));

    test('a group one of whose messages cannot be stored stores neither its messages nor its key', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message());
      await assert.rejects(q.queue.messages.enqueueGroup([message(), message(undefined, { id })], key()));
      assert.equal((await q.queue.recipients.counts()).messages, 1);
      assert.equal(await q.queue.idempotency.getIdempotency('app', 'k-1', 0), undefined);
      // …and the key is free for the retry.
      assert.equal((await q.queue.messages.enqueueGroup([message()], key())).length, 1);
    }));

    test('tenant and campaign given at enqueue are read back with the message', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message(undefined, { tenant: 'acme', campaign: 'spring', metadata: { a: 1 } }));
      const m = await q.queue.messages.getMessage(id);
      assert.equal(m?.tenant, 'acme');
      assert.equal(m?.campaign, 'spring');
      const [listed] = await q.queue.recipients.listMessages({ messageId: id });
      assert.equal(listed?.message.tenant, 'acme');
      const plain = await q.queue.messages.getMessage(await q.queue.messages.enqueue(message()));
      assert.ok(plain && !('tenant' in plain) && !('campaign' in plain));
    }));
  });
}

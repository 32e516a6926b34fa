/**
 * The MessageStore contract, for every implementation: a message, its
 * recipients and its body are stored together and read back byte for byte;
 * ids are unique and a pre-assigned one is honoured (a duplicate is refused
 * alone); a second handle (node) sees what the first stored; delete removes
 * everything of a message.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HalcyonError } from '../../../src/errors.js';
import { message, T0, withQueue, type Implementation } from './harness.js';

export function messageStoreContract(impl: Implementation): void {
  describe(`MessageStore contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('round trip of message, binary body and recipients; visible from another node', () => withQueue(impl, async (q) => {
      const body = Buffer.from([0, 1, 2, 255, 13, 10, 46, 13, 10]);
      const id = await q.queue.messages.enqueue(message([
        { address: 'a@Example.TEST', orcpt: 'rfc822;a@example.test', notify: ['FAILURE', 'DELAY'], destination: 'example.test' },
        { address: 'b@other.test', notify: 'NEVER', destination: 'other.test' },
      ], { sender: '', body, params: { size: 9, body: '8BITMIME', smtputf8: true, ret: 'HDRS', envid: 'e+1' }, dsnFor: 'ABC' }));
      const other = await q.open();
      const m = await other.messages.getMessage(id);
      assert.deepEqual(m, {
        id, sender: '', params: { size: 9, body: '8BITMIME', smtputf8: true, ret: 'HDRS', envid: 'e+1' }, receivedAt: T0, size: body.length,
        held: false, dsnFor: 'ABC', trace: { clientIp: '127.0.0.1', clientHelo: 'client.test', protocol: 'ESMTP' },
      });
      assert.deepEqual(await other.messages.getBody(id), body);
      const rcpts = await other.recipients.getRecipients(id);
      assert.deepEqual(rcpts.map((r) => [r.address, r.state, r.destination, r.notify, r.orcpt]), [
        ['a@Example.TEST', 'queued', 'example.test', ['FAILURE', 'DELAY'], 'rfc822;a@example.test'],
        ['b@other.test', 'queued', 'other.test', 'NEVER', undefined],
      ]);
      assert.deepEqual(await other.messages.getForDelivery(id), { message: m, body });
      assert.equal(await other.messages.getForDelivery('NOPE'), undefined);
      assert.equal(await other.messages.getMessage('NOPE'), undefined);
      await assert.rejects(other.messages.getBody('NOPE'), (e: unknown) => e instanceof HalcyonError && e.code === 'HAL_ERR_QUEUE_NOT_FOUND');
    }));

    test('ids: unique under concurrency, a pre-assigned one honoured, a duplicate refused alone', () => withQueue(impl, async (q) => {
      const ids = await Promise.all(Array.from({ length: 200 }, () => q.queue.messages.enqueue(message())));
      assert.equal(new Set(ids).size, 200);
      const mine = q.queue.messages.newId();
      assert.equal(await q.queue.messages.enqueue(message(undefined, { id: mine })), mine);
      const [dup, fine] = await Promise.allSettled([
        q.queue.messages.enqueue(message(undefined, { id: mine })),
        q.queue.messages.enqueue(message()),
      ]);
      assert.equal(dup.status, 'rejected');
      assert.equal(fine.status, 'fulfilled', 'one bad message does not fail the others of its commit');
      assert.equal((await q.queue.recipients.counts()).messages, 202);
    }));

    test('deleteMessages removes a message with its body and recipients, and counts what existed', () => withQueue(impl, async (q) => {
      const a = await q.queue.messages.enqueue(message());
      const b = await q.queue.messages.enqueue(message());
      assert.equal(await q.queue.messages.deleteMessages([a, 'NOPE']), 1);
      assert.equal(await q.queue.messages.getMessage(a), undefined);
      assert.deepEqual(await q.queue.recipients.getRecipients(a), []);
      await assert.rejects(q.queue.messages.getBody(a));
      assert.ok(await q.queue.messages.getMessage(b));
    }));
  });
}

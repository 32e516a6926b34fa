/**
 * The EventOutbox contract (queue/event-outbox), for every implementation:
 * the events are written by the state changes themselves (enqueue, outcomes,
 * a DSN's enqueue), one row per sink that takes the type, with every field of
 * docs/events.md; an outcome that is not applied writes none; claims by two
 * nodes never overlap; a lease that runs out makes the rows claimable again; a
 * retried row waits for its time; only an acknowledgment deletes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { HalcyonEvent } from '../../../src/queue/event.js';
import type { Queue } from '../../../src/queue/store.js';
import { message, T0, withQueue, type Implementation } from './harness.js';

const claim = (now: number, owner: string, limit = 100) => ({ now, limit, owner, leaseUntil: now + 30_000 });

async function drain(q: Queue, sink: string, now: number): Promise<HalcyonEvent[]> {
  const rows = await q.events.claimEvents(sink, claim(now, 'reader', 1000));
  await q.events.ackEvents(rows.map((r) => r.id));
  return rows.map((r) => JSON.parse(r.body) as HalcyonEvent);
}

export function eventOutboxContract(impl: Implementation): void {
  describe(`EventOutbox contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('an enqueue writes one received event per recipient, with the message\'s facts, for the sinks that take it', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([
        { address: 'bob@Example.test', destination: 'mx:example' }, { address: 'carol@other.test', destination: 'other.test' },
      ], { headerMessageId: '<m1@sender.test>', tenant: 'acme', campaign: 'spring', metadata: { order: 42 } }));
      assert.deepEqual(await q.queue.events.claimEvents('bounces', claim(T0, 'a')), []);
      const events = await drain(q.queue, 'all', T0);
      assert.equal(events.length, 2);
      const bob = events.find((e) => e.recipient === 'bob@Example.test')!;
      assert.deepEqual({ ...bob, id: undefined }, {
        id: undefined, type: 'received', time: new Date(T0).toISOString(), node: 'node-a', queue_id: id, message_id: '<m1@sender.test>',
        sender: 'alice@sender.test', recipient: 'bob@Example.test', destination: 'mx:example', domain: 'example.test',
        tenant: 'acme', campaign: 'spring', metadata: { order: 42 },
      });
      assert.notEqual(events[0]!.id, events[1]!.id);
    }));

    test('outcomes write delivered / deferred / bounced events with the reply and the attempt; an ignored outcome writes none', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([
        { address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }, { address: 'c@x.test', destination: 'x.test' },
      ], { tenant: 't1' }));
      await drain(q.queue, 'all', T0);
      const [a, b, c] = await q.queue.recipients.claimDue({ now: T0, limit: 10, owner: 'node-a', leaseUntil: T0 + 60_000 });
      const host = 'mx.x.test[127.0.0.1]:25';
      await q.queue.recipients.recordOutcomes([
        { recipientId: a!.id, outcome: { kind: 'delivered', reply: { code: 250, enhanced: '2.0.0', text: 'ok', host, command: 'end of DATA' } } },
        { recipientId: b!.id, outcome: { kind: 'deferred', reply: { code: 451, enhanced: '4.3.0', text: 'later', host, command: 'RCPT TO' }, nextAttemptAt: T0 + 1000, countAttempt: true } },
        { recipientId: c!.id, outcome: { kind: 'failed', reply: { code: 550, enhanced: '5.1.1', text: 'no such user', host, command: 'RCPT TO' } } },
      ], T0 + 5, 'node-a');
      // Applied to a final recipient again: ignored, and no event.
      await q.queue.recipients.recordOutcomes([{ recipientId: a!.id, outcome: { kind: 'failed', reply: { code: 550, text: 'late' } } }], T0 + 6, 'node-a');
      const events = await drain(q.queue, 'all', T0 + 10);
      assert.deepEqual(events.map((e) => [e.recipient, e.type, e.reply?.code, e.reply?.enhanced, e.reply?.phase, e.attempt]).sort(), [
        ['a@x.test', 'delivered', 250, '2.0.0', 'end of DATA', 1],
        ['b@x.test', 'deferred', 451, '4.3.0', 'RCPT TO', 1],
        ['c@x.test', 'bounced', 550, '5.1.1', 'RCPT TO', 1],
      ]);
      for (const e of events) {
        assert.equal(e.queue_id, id);
        assert.equal(e.tenant, 't1');
        assert.equal(e.reply?.host, host);
        assert.equal(e.time, new Date(T0 + 5).toISOString());
      }
      const bounces = await drain(q.queue, 'bounces', T0 + 10);
      assert.deepEqual(bounces.map((e) => [e.type, e.recipient, e.id]), [['bounced', 'c@x.test', events.find((e) => e.type === 'bounced')!.id]]);
    }));

    test('an outcome carrying a triggered reply rule writes rule_triggered with it, in its commit; an ignored one writes none', () => withQueue(impl, async (q) => {
      await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }], { tenant: 't2', campaign: 'c2' }));
      await drain(q.queue, 'all', T0);
      const [a, b] = await q.queue.recipients.claimDue({ now: T0, limit: 10, owner: 'node-a', leaseUntil: T0 + 60_000 });
      const reply = { code: 421, enhanced: '4.7.0', text: 'slow down', host: 'mx.x.test[127.0.0.1]:25', command: 'MAIL FROM' };
      const rule = { text: 'rules[0] action=suspend match=/slow down/', action: 'suspend' as const };
      await q.queue.recipients.recordOutcomes([
        { recipientId: a!.id, outcome: { kind: 'deferred', reply, nextAttemptAt: T0 + 1000, countAttempt: true }, rule },
        { recipientId: b!.id, outcome: { kind: 'deferred', reply, nextAttemptAt: T0 + 1000, countAttempt: true } },
      ], T0 + 5, 'node-a');
      // Not claimed by this owner: not applied, so neither its outcome nor its rule event.
      await q.queue.recipients.recordOutcomes([{ recipientId: a!.id, outcome: { kind: 'failed', reply }, rule }], T0 + 6, 'node-b');
      const events = await drain(q.queue, 'all', T0 + 10);
      const triggered = events.filter((e) => e.type === 'rule_triggered');
      assert.equal(triggered.length, 1);
      assert.deepEqual({ ...triggered[0], id: undefined, queue_id: undefined }, {
        id: undefined, queue_id: undefined, type: 'rule_triggered', time: new Date(T0 + 5).toISOString(), node: 'node-a', sender: 'alice@sender.test',
        recipient: 'a@x.test', destination: 'x.test', domain: 'x.test', tenant: 't2', campaign: 'c2',
        reply: { code: 421, enhanced: '4.7.0', text: 'slow down', host: 'mx.x.test[127.0.0.1]:25', phase: 'MAIL FROM' }, attempt: 1,
        rule: 'rules[0] action=suspend match=/slow down/', action: 'suspend',
      });
      assert.equal(events.filter((e) => e.type === 'deferred').length, 2);
    }));

    test('a report\'s enqueue writes dsn_sent about the message it reports on', () => withQueue(impl, async (q) => {
      const orig = await q.queue.messages.enqueue(message(undefined, { campaign: 'c9' }));
      const dsn = await q.queue.messages.enqueue(message([{ address: 'alice@sender.test', destination: 'sender.test' }], { sender: '', dsnFor: orig }));
      const sent = (await drain(q.queue, 'all', T0)).filter((e) => e.type === 'dsn_sent');
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.queue_id, orig);
      assert.equal(sent[0]!.dsn_queue_id, dsn);
      assert.equal(sent[0]!.recipient, 'alice@sender.test');
      assert.equal(sent[0]!.campaign, 'c9');
    }));

    test('two nodes never claim the same row; a lease that ran out is claimable again; retried rows wait; only an ack deletes', () => withQueue(impl, async (q) => {
      await Promise.all(Array.from({ length: 30 }, (_, i) => q.queue.messages.enqueue(message([{ address: `r${i}@x.test`, destination: 'x.test' }]))));
      const b = await q.open();
      const [x, y] = await Promise.all([q.queue.events.claimEvents('all', claim(T0, 'a', 20)), b.events.claimEvents('all', claim(T0, 'b', 20))]);
      assert.equal(x.length + y.length, 30);
      assert.equal(new Set([...x, ...y].map((r) => r.id)).size, 30);
      assert.deepEqual(await q.queue.events.claimEvents('all', claim(T0 + 1, 'c')), []);
      const depth = await q.queue.events.outboxDepth();
      assert.deepEqual(depth.map((d) => [d.sink, d.depth, d.leased]), [['all', 30, 30]]);
      // a's node dies: its rows come back once the lease ran out; b fails a send and retries later.
      assert.equal(await b.events.retryEvents(y.map((r) => r.id), 'b', T0 + 100_000), y.length);
      assert.equal(await b.events.retryEvents(x.map((r) => r.id), 'b', T0 + 100_000), 0, 'not b\'s rows');
      const again = await b.events.claimEvents('all', claim(T0 + 30_001, 'b', 100));
      assert.deepEqual(again.map((r) => r.id).sort(), x.map((r) => r.id).sort());
      assert.equal(await b.events.ackEvents(again.map((r) => r.id)), x.length);
      assert.deepEqual(await b.events.claimEvents('all', claim(T0 + 99_999, 'b')), []);
      const late = await b.events.claimEvents('all', claim(T0 + 100_000, 'b'));
      assert.equal(late.length, y.length);
      assert.ok(late.every((r) => r.attempts === 1));
      assert.equal(await b.events.ackEvents(late.map((r) => r.id)), y.length);
      assert.deepEqual(await b.events.outboxDepth(), []);
    }));
  });
}

/** http/queue-shape: qshape's rows from the queue's counts (the bucketing itself is the queue's: test/queue/contract). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ShapeCount } from '../queue/recipient-queue.js';
import { queueShape, senderShape, SHAPE_BOUNDS_MS, SHAPE_BUCKETS_MINUTES } from './queue-shape.js';

const c = (domain: string, bucket: number, n: number, held = false, destination = domain): ShapeCount => ({ domain, destination, held, bucket, n });

test('qshape\'s buckets: 5 … 1280 minutes, then an open one; the queue is given the bounds in ms', () => {
  assert.deepEqual(SHAPE_BUCKETS_MINUTES, [5, 10, 20, 40, 80, 160, 320, 640, 1280, null]);
  assert.deepEqual(SHAPE_BOUNDS_MS, [5, 10, 20, 40, 80, 160, 320, 640, 1280].map((m) => m * 60_000));
});

test('queueShape: TOTAL of waiting recipients per bucket, rows largest first (then by name), held apart', () => {
  const s = queueShape([c('b.test', 0, 2), c('a.test', 1, 1), c('b.test', 9, 1), c('b.test', 3, 1, true), c('h.test', 3, 1, true), c('c.test', 0, 1)]);
  assert.equal(s.by, 'domain');
  assert.deepEqual(s.bucketsMinutes, [5, 10, 20, 40, 80, 160, 320, 640, 1280, null]);
  assert.deepEqual(s.total, { key: 'TOTAL', total: 5, counts: [3, 1, 0, 0, 0, 0, 0, 0, 0, 1] });
  assert.deepEqual(s.rows, [
    { key: 'b.test', total: 3, counts: [2, 0, 0, 0, 0, 0, 0, 0, 0, 1] },
    { key: 'a.test', total: 1, counts: [0, 1, 0, 0, 0, 0, 0, 0, 0, 0] },
    { key: 'c.test', total: 1, counts: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
  ]);
  assert.deepEqual(s.held, { key: 'HELD', total: 2, counts: [0, 0, 0, 2, 0, 0, 0, 0, 0, 0] });
  assert.deepEqual(s.heldRows.map((r) => [r.key, r.total]), [['b.test', 1], ['h.test', 1]]);
});

test('queueShape by destination: counts of several domains folded into the key the caller maps them to', () => {
  const s = queueShape([c('one.test', 0, 1), c('two.test', 2, 1), c('z.test', 0, 1)], 'destination', (x) => (x.domain === 'z.test' ? 'z.test' : 'mx.shared.test'));
  assert.equal(s.by, 'destination');
  assert.deepEqual(s.rows, [{ key: 'mx.shared.test', total: 2, counts: [1, 0, 1, 0, 0, 0, 0, 0, 0, 0] }, { key: 'z.test', total: 1, counts: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] }]);
  // Without a mapping, the destination the recipient is queued under.
  assert.deepEqual(queueShape([c('x.test', 0, 1, false, 'route:10.0.0.1:25')], 'destination').rows.map((r) => r.key), ['route:10.0.0.1:25']);
});

test('queueShape of an empty queue: no rows, zero in every bucket', () => {
  const s = queueShape([]);
  assert.deepEqual(s.rows, []);
  assert.deepEqual(s.total.counts, new Array(10).fill(0));
  assert.equal(s.total.total + s.held.total, 0);
});

test('senderShape (qshape -s): messages per sender domain, the null sender as MAILER-DAEMON, held apart', () => {
  const s = senderShape([
    { senderDomain: 'shop.test', held: false, bucket: 0, n: 2 },
    { senderDomain: '', held: false, bucket: 2, n: 1 },
    { senderDomain: 'shop.test', held: true, bucket: 4, n: 1 },
  ]);
  assert.equal(s.by, 'sender-domain');
  assert.equal(s.counts, 'messages');
  assert.deepEqual(s.rows.map((r) => [r.key, r.total]), [['shop.test', 2], ['MAILER-DAEMON', 1]]);
  assert.deepEqual(s.total.counts, [2, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(s.heldRows.map((r) => [r.key, r.total]), [['shop.test', 1]]);
  assert.equal(queueShape([]).counts, 'recipients');
});

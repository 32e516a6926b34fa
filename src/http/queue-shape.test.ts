/** http/queue-shape: qshape's buckets and rows from queue rows at a fixed clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageRow, RecipientRow, RecipientState } from '../queue/model.js';
import { bucketOf, queueShape, SHAPE_BUCKETS_MINUTES } from './queue-shape.js';

const NOW = Date.UTC(2026, 10, 30, 13, 0, 0);
const MIN = 60_000;
let nextId = 1;

function entry(id: string, ageMin: number, rcpts: [string, RecipientState, string?][], held = false) {
  const message: MessageRow = {
    id, sender: 'a@src.test', params: { smtputf8: false }, receivedAt: NOW - ageMin * MIN, size: 10,
    trace: { clientIp: '127.0.0.1', clientHelo: 'x', protocol: 'ESMTP' }, held,
  };
  const recipients: RecipientRow[] = rcpts.map(([address, state, destination]) => ({
    id: nextId++, messageId: id, address, destination: destination ?? address.split('@')[1]!, state, attempts: 0, nextAttemptAt: NOW,
    delayNotified: false, dsnDone: false, updatedAt: NOW,
  }));
  return { message, recipients };
}

test('bucketOf: qshape\'s bounds, upper bound exclusive, 1280+ last, a future arrival in the first', () => {
  assert.equal(SHAPE_BUCKETS_MINUTES.length, 10);
  assert.equal(bucketOf(0), 0);
  assert.equal(bucketOf(4.99 * MIN), 0);
  assert.equal(bucketOf(5 * MIN), 1);
  assert.equal(bucketOf(19 * MIN), 2);
  assert.equal(bucketOf(1279 * MIN), 8);
  assert.equal(bucketOf(1280 * MIN), 9);
  assert.equal(bucketOf(30 * 86_400_000), 9);
  assert.equal(bucketOf(-5 * MIN), 0);
});

test('queueShape: TOTAL of waiting recipients by message age, rows largest first, final states left out, held apart', () => {
  const s = queueShape([
    entry('M1', 2, [['x@b.test', 'deferred'], ['y@B.TEST', 'queued'], ['z@a.test', 'delivered']]),
    entry('M2', 7, [['x@a.test', 'inflight'], ['w@c.test', 'failed']]),
    entry('M3', 2000, [['q@b.test', 'deferred']]),
    entry('M4', 30, [['h@b.test', 'deferred'], ['h2@h.test', 'deferred'], ['gone@h.test', 'expired']], true),
  ], NOW);
  assert.equal(s.by, 'domain');
  assert.deepEqual(s.bucketsMinutes, [5, 10, 20, 40, 80, 160, 320, 640, 1280, null]);
  assert.deepEqual(s.total, { key: 'TOTAL', total: 4, counts: [2, 1, 0, 0, 0, 0, 0, 0, 0, 1] });
  assert.deepEqual(s.rows, [
    { key: 'b.test', total: 3, counts: [2, 0, 0, 0, 0, 0, 0, 0, 0, 1] },
    { key: 'a.test', total: 1, counts: [0, 1, 0, 0, 0, 0, 0, 0, 0, 0] },
  ]);
  assert.deepEqual(s.held, { key: 'HELD', total: 2, counts: [0, 0, 0, 2, 0, 0, 0, 0, 0, 0] });
  assert.deepEqual(s.heldRows.map((r) => [r.key, r.total]), [['b.test', 1], ['h.test', 1]]);
});

test('queueShape by destination: the key the caller maps a recipient to (the MX host set), equal totals by name', () => {
  const s = queueShape([
    entry('M1', 1, [['a@one.test', 'deferred', 'one.test'], ['b@two.test', 'deferred', 'two.test'], ['c@z.test', 'queued', 'z.test']]),
  ], NOW, 'destination', (r) => (r.destination === 'z.test' ? 'z.test' : 'mx.shared.test'));
  assert.equal(s.by, 'destination');
  assert.deepEqual(s.rows.map((r) => [r.key, r.total]), [['mx.shared.test', 2], ['z.test', 1]]);
});

test('queueShape of an empty queue: zero rows, zero totals in every bucket', () => {
  const s = queueShape([], NOW);
  assert.deepEqual(s.rows, []);
  assert.equal(s.total.counts.length, 10);
  assert.equal(s.total.total + s.held.total, 0);
});

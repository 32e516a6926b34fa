/** http/throughput: the per-minute ring, driven by a fake clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThroughputRing } from './throughput.js';

const MIN = 60_000;

test('the ring: 60 minutes oldest first, the current minute last, empty minutes as zeros, an hour-old slot reused', () => {
  let now = Date.UTC(2026, 10, 30, 13, 0, 30);
  const ring = new ThroughputRing(() => now);
  ring.record('sent');
  ring.record('sent');
  ring.record('bounced');
  now += MIN;
  ring.record('deferred');
  let s = ring.snapshot('node-a');
  assert.equal(s.node, 'node-a');
  assert.equal(s.minutes.length, 60);
  const last = s.minutes.at(-1)!;
  assert.deepEqual(last, { at: Date.UTC(2026, 10, 30, 13, 1), sent: 0, deferred: 1, bounced: 0 });
  assert.deepEqual(s.minutes.at(-2), { at: Date.UTC(2026, 10, 30, 13, 0), sent: 2, deferred: 0, bounced: 1 });
  assert.equal(s.minutes[0]!.at, Date.UTC(2026, 10, 30, 12, 2));
  for (let i = 1; i < 60; i++) assert.equal(s.minutes[i]!.at - s.minutes[i - 1]!.at, MIN);
  assert.equal(s.minutes.slice(0, 58).reduce((n, m) => n + m.sent + m.deferred + m.bounced, 0), 0);

  // 59 minutes on, 13:00 is the oldest minute shown; one more and it is gone.
  now += 58 * MIN;
  assert.equal(ring.snapshot('node-a').minutes[0]!.sent, 2);
  now += MIN;
  s = ring.snapshot('node-a');
  assert.equal(s.minutes.reduce((n, m) => n + m.sent + m.bounced, 0), 0);
  assert.equal(s.minutes[0]!.deferred, 1);
  // 13:00's slot, used again an hour later, starts from zero.
  ring.record('sent');
  assert.deepEqual(ring.snapshot('node-a').minutes.at(-1), { at: Date.UTC(2026, 10, 30, 14, 0), sent: 1, deferred: 0, bounced: 0 });
});

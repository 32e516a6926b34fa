/**
 * The warm-up contract (queue/warmup through DestinationGate.takeWarmup), for
 * every queue implementation, with two handles standing for two nodes: a
 * source's first take sets its first UTC day, the day's cap counts every
 * node's takes (never more granted than the cap, also when nodes take at
 * once), a take is cut to what is left, the next UTC day starts a new count
 * under the schedule's next cap, scopes and sources count apart, and after
 * the schedule's last day nothing is capped.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DAY_MS, utcDay } from '../../../src/queue/warmup.js';
import { T0, withQueue, type Implementation } from './harness.js';

const DAY1 = utcDay(T0) * DAY_MS + 3_600_000; // 01:00 UTC of T0's day

export function warmupContract(impl: Implementation): void {
  describe(`Warm-up contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('the cap holds across nodes and days; a take is cut to what is left; the schedule ends', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const req = { source: 'ip2', scope: 'provider:google', caps: [5, 8] };
      const first = await q.queue.gate.takeWarmup({ ...req, now: DAY1, want: 3 });
      assert.deepEqual(first, { granted: 3, day: 1, cap: 5, sent: 3 });
      assert.deepEqual(await b.gate.takeWarmup({ ...req, now: DAY1 + 1000, want: 3 }), { granted: 2, day: 1, cap: 5, sent: 5 }, 'cut to what is left');
      assert.deepEqual(await q.queue.gate.takeWarmup({ ...req, now: DAY1 + 2000, want: 1 }), { granted: 0, day: 1, cap: 5, sent: 5 }, 'at the cap: nothing');
      // Another scope and another source count apart.
      assert.equal((await b.gate.takeWarmup({ ...req, scope: 'mx:mx.example.test', now: DAY1, want: 5 })).granted, 5);
      assert.equal((await b.gate.takeWarmup({ ...req, source: 'ip3', now: DAY1, want: 4 })).granted, 4);
      // The next UTC day (23 h later is still day 1 until midnight): day 2's cap, a new count.
      assert.deepEqual(await b.gate.takeWarmup({ ...req, now: DAY1 + 22 * 3_600_000, want: 1 }), { granted: 0, day: 1, cap: 5, sent: 5 });
      assert.deepEqual(await b.gate.takeWarmup({ ...req, now: DAY1 + DAY_MS, want: 10 }), { granted: 8, day: 2, cap: 8, sent: 8 });
      const counts = await q.queue.gate.warmupCounts(utcDay(DAY1 + DAY_MS));
      assert.deepEqual(counts, [{ source: 'ip2', scope: 'provider:google', day: utcDay(DAY1) + 1, sent: 8, firstDay: utcDay(DAY1) }]);
      // Day 3: the schedule is over, no cap.
      assert.deepEqual(await q.queue.gate.takeWarmup({ ...req, now: DAY1 + 2 * DAY_MS, want: 1000 }), { granted: 1000, day: 3, sent: 0 });
    }));

    test('nodes taking at once never get more than the cap', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const takes = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? q.queue.gate : b.gate)
        .takeWarmup({ source: 'ip2', scope: 'provider:yahoo', caps: [7], now: DAY1, want: 1 })));
      assert.equal(takes.reduce((n, t) => n + t.granted, 0), 7);
      assert.equal(Math.max(...takes.map((t) => t.sent)), 7);
    }));
  });
}

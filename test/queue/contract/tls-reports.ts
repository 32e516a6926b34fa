/**
 * The TlsReportStore contract (queue/tls-reports), for every implementation:
 * counts add up across writers (two handles stand for two nodes) and
 * survive a reopen; a domain-day is claimed by one node at a time, only
 * once its day is over; a lease that runs out makes it claimable again; a
 * retried report waits for its time with its attempt counted; finishing
 * removes its rows and nothing else.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TlsSessionCount } from '../../../src/queue/tls-reports.js';
import { T0, withQueue, type Implementation } from './harness.js';

const STS = ['version: STSv1', 'mode: enforce', 'mx: mx.a.test', 'max_age: 86400'];
const count = (over: Partial<TlsSessionCount> = {}): TlsSessionCount => ({
  day: '2026-12-05', policyDomain: 'a.test', policyType: 'sts', policyStrings: STS, mxHosts: ['mx.a.test'],
  resultType: '', receivingMx: 'mx.a.test', receivingIp: '127.0.0.1', sessions: 1, ...over,
});
const claim = (owner: string, now = T0, before = '2026-12-06') => ({ before, now, owner, leaseUntil: now + 60_000, limit: 10 });

export function tlsReportsContract(impl: Implementation): void {
  describe(`TlsReportStore contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('counts from two nodes add up, per result; the latest policy strings are kept', () => withQueue(impl, async (q) => {
      const other = await q.open();
      await q.queue.tlsReports.countTlsSessions([count(), count({ sessions: 2 }), count({ resultType: 'certificate-host-mismatch', sessions: 1 })]);
      await other.tlsReports.countTlsSessions([count({ sessions: 4, policyStrings: [...STS.slice(0, 2), 'mx: *.a.test', 'max_age: 86400'] })]);
      const rows = await q.queue.tlsReports.tlsSessionCounts('2026-12-05');
      assert.deepEqual(rows.map((r) => [r.resultType, r.sessions]), [['', 7], ['certificate-host-mismatch', 1]]);
      assert.deepEqual(rows[0]!.policyStrings, ['version: STSv1', 'mode: enforce', 'mx: *.a.test', 'max_age: 86400']);
      assert.deepEqual(await q.queue.tlsReports.tlsSessionCounts('2026-12-04'), []);
    }));

    test('only days before `before` are claimed, each by one node, with their rows', () => withQueue(impl, async (q) => {
      const other = await q.open();
      await q.queue.tlsReports.countTlsSessions([
        count(), count({ policyDomain: 'b.test' }), count({ day: '2026-12-06', sessions: 9 }),
        count({ policyDomain: 'mx.c.test', policyType: 'tlsa', policyStrings: ['3 1 1 abcd'], resultType: 'validation-failure' }),
      ]);
      const [mine, theirs] = await Promise.all([q.queue.tlsReports.claimTlsReports(claim('node-a')), other.tlsReports.claimTlsReports(claim('node-b'))]);
      const keys = (l: typeof mine) => l.map((c) => `${c.day} ${c.policyDomain}`);
      assert.deepEqual([...keys(mine), ...keys(theirs)].sort(), ['2026-12-05 a.test', '2026-12-05 b.test', '2026-12-05 mx.c.test']);
      const c = [...mine, ...theirs].find((x) => x.policyDomain === 'mx.c.test')!;
      assert.equal(c.attempts, 0);
      assert.deepEqual(c.rows.map((r) => [r.policyType, r.resultType, r.sessions, r.policyStrings]), [['tlsa', 'validation-failure', 1, ['3 1 1 abcd']]]);
      assert.deepEqual(await q.queue.tlsReports.claimTlsReports(claim('node-c')), [], 'all leased');
      // A lease that runs out: claimable again.
      assert.equal((await q.queue.tlsReports.claimTlsReports(claim('node-c', T0 + 61_000))).length, 3);
    }));

    test('a retried report waits for its time, its attempt counted; finishing removes its rows and claim only', () => withQueue(impl, async (q) => {
      await q.queue.tlsReports.countTlsSessions([count(), count({ policyDomain: 'b.test' }), count({ day: '2026-12-06' })]);
      const got = await q.queue.tlsReports.claimTlsReports(claim('node-a'));
      assert.equal(got.length, 2);
      assert.equal(await q.queue.tlsReports.retryTlsReport('2026-12-05', 'a.test', 'node-b', T0 + 5_000), false, 'not held by node-b');
      assert.equal(await q.queue.tlsReports.retryTlsReport('2026-12-05', 'a.test', 'node-a', T0 + 5_000), true);
      assert.equal(await q.queue.tlsReports.finishTlsReport('2026-12-05', 'b.test'), 1);
      assert.deepEqual(await q.queue.tlsReports.claimTlsReports(claim('node-a', T0 + 1_000)), [], 'waiting for its retry time');
      const again = await q.queue.tlsReports.claimTlsReports(claim('node-a', T0 + 5_000));
      assert.deepEqual(again.map((c) => [c.policyDomain, c.attempts]), [['a.test', 1]]);
      assert.equal(await q.queue.tlsReports.finishTlsReport('2026-12-05', 'a.test'), 1);
      assert.deepEqual((await q.queue.tlsReports.tlsSessionCounts()).map((r) => `${r.day} ${r.policyDomain}`), ['2026-12-06 a.test'], 'the day not over is kept');
      // A new count for a finished day starts a new report.
      await q.queue.tlsReports.countTlsSessions([count()]);
      assert.equal((await q.queue.tlsReports.claimTlsReports(claim('node-a', T0 + 6_000))).length, 1);
    }));
  });
}

/**
 * Tests of the queue's health state (queue/health) and of which pg errors
 * count as losing the database (pg/db's isConnectionLoss): a loss is
 * reported once and probed back with bounded backoff; a failure is for good
 * and wins over a loss; a statement error on a live connection is not a loss.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HalcyonError } from '../errors.js';
import { probeDelay, QueueHealth, type QueueHealthChange } from './health.js';
import { isConnectionLoss } from './pg/db.js';

const unavailable = (why = 'ECONNREFUSED') => new HalcyonError('HAL_ERR_QUEUE_UNAVAILABLE', why);
const broken = () => new HalcyonError('HAL_ERR_QUEUE_FAILED', 'SQLITE_CORRUPT');

/** Resolves once `pred` holds (polled; the probe runs on timers). */
async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('probe delays double from 1 s and stay at 10 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 50].map((a) => probeDelay(a)), [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
});

test('a lost database: unavailable once however many calls fail, probed until it answers, then ok by itself', async () => {
  let answers = false;
  let probes = 0;
  const h = new QueueHealth({ initialMs: 1, maxMs: 5, probe: async () => { probes++; if (!answers) throw new Error('ECONNREFUSED'); } });
  const changes: QueueHealthChange[] = [];
  h.onChange((c) => changes.push(c));
  const problem = () => h.problem; // a getter: read afresh each time
  assert.equal(h.state, 'ok');
  assert.equal(problem(), undefined);
  for (let i = 0; i < 20; i++) h.lost(unavailable(`call ${i}`));
  assert.equal(h.state, 'unavailable');
  assert.equal(problem()?.code, 'HAL_ERR_QUEUE_UNAVAILABLE');
  await until(() => probes >= 3);
  assert.equal(h.state, 'unavailable', 'still down while the probe fails');
  answers = true;
  await until(() => h.state === 'ok');
  assert.equal(problem(), undefined);
  assert.deepEqual(changes.map((c) => c.state), ['unavailable', 'ok'], 'one change each way');
  assert.match(changes[0]!.error!.message, /call 0/, 'the first failure is the reason');
  assert.equal(typeof changes[1]!.downMs, 'number');
  // A second outage is reported again.
  answers = false;
  h.lost(unavailable());
  assert.equal(h.state, 'unavailable');
  h.close();
});

test('broken storage is failed for good: no probe brings it back, and a later loss does not hide it', async () => {
  let probes = 0;
  const h = new QueueHealth({ initialMs: 1, maxMs: 1, probe: async () => { probes++; } });
  const changes: string[] = [];
  h.onChange((c) => changes.push(c.state));
  h.lost(unavailable());
  h.failed(broken());
  h.lost(unavailable());
  h.failed(broken());
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(h.state, 'failed');
  assert.equal(h.problem?.code, 'HAL_ERR_QUEUE_FAILED');
  assert.deepEqual(changes, ['unavailable', 'failed']);
  assert.equal(probes, 0, 'failing stopped the probe that the loss had scheduled');
  h.close();
});

test('a closed queue (stopping) reports no change', () => {
  const h = new QueueHealth();
  h.close();
  h.lost(unavailable());
  h.failed(broken());
  assert.equal(h.state, 'ok');
});

test('which pg errors mean the database is gone', () => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  const lost = [
    coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
    coded('ECONNRESET'),
    coded('57P01', 'terminating connection due to administrator command'),
    coded('57P03', 'the database system is shutting down'),
    coded('08006'),
    new Error('Connection terminated unexpectedly'),
    new Error('Client has encountered a connection error and is not queryable'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Connection terminated due to connection timeout', { cause: new Error('Connection terminated unexpectedly') }),
    new Error('wrapped', { cause: coded('ECONNREFUSED') }),
  ];
  for (const e of lost) assert.equal(isConnectionLoss(e), true, e.message);
  const statementErrors = [
    coded('23505', 'duplicate key value violates unique constraint'),
    coded('40001', 'could not serialize access'),
    coded('53100', 'could not extend file: No space left on device'),
    coded('42P01', 'relation "messages" does not exist'),
    new Error('something else'),
    'a string',
    undefined,
  ];
  for (const e of statementErrors) assert.equal(isConnectionLoss(e), false, String(e));
});

/**
 * `queue flush` semantics at the scheduler: flushing makes deferred
 * recipients due now (their own retry wait is skipped), but a destination in
 * backoff still blocks them — a flush never turns into a storm against a host
 * known to be failing. When the backoff ends they go out.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRemote } from '../support/remote-smtp.js';
import { enqueueMany, startHarness } from './harness.js';

const HOUR = 3_600_000;

test('flush makes deferred recipients due now, but not past a destination backoff', async () => {
  const seen = new Set<string>();
  const remote = await startRemote({ rcpt: (rcpt) => (seen.has(rcpt) ? undefined : (seen.add(rcpt), '450 4.7.1 Greylisted')) });
  after(() => remote.close());
  const h = await startHarness(remote.port, { retry_initial: '30m' });
  after(() => h.stop());
  const { store, qmgr } = h.app;
  const start = h.clock.now();
  await enqueueMany(store, { count: 5, destination: h.destination, receivedAt: start });
  const rcpts = () => remote.commands.filter((c) => /^RCPT TO/i.test(c.line)).length;

  await qmgr.runOnce();
  assert.equal(rcpts(), 5);
  h.clock.advance(60_000);
  await qmgr.runOnce();
  assert.equal(rcpts(), 5, 'deferred recipients were retried before their time');

  // The destination goes into backoff (as a failed probe would have put it), then the queue is flushed.
  const now = h.clock.now();
  await store.gate.putDestination({ key: h.destination, health: 'backoff', backoffUntil: now + HOUR, backoffMs: HOUR, consecutiveFailures: 1, updatedAt: now });
  assert.equal(await store.recipients.flush({ now }), 5);
  for (const m of await store.recipients.listMessages({})) for (const r of m.recipients) assert.equal(r.nextAttemptAt, now);
  await qmgr.runOnce();
  assert.equal(rcpts(), 5, 'flush went past the destination backoff');
  assert.equal(remote.transactions.length, 0);
  const { byState } = await store.recipients.counts();
  assert.equal(byState.deferred, 5);
  assert.equal(await store.recipients.nextDueAt(), now + HOUR, 'they are due when the backoff ends');

  // When the backoff ends: one probe pass delivers them all.
  h.clock.set(now + HOUR);
  for (let pass = 0; pass < 5 && remote.transactions.length < 5; pass++) await qmgr.runOnce();
  assert.deepEqual(remote.transactions.flatMap((t) => t.rcpts).sort(), [...seen].sort());
  assert.equal((await store.gate.getDestination(h.destination))?.health, 'ok');
});

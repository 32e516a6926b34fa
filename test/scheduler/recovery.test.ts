/**
 * Recovery from a destination's backoff: when the backoff ends, exactly one
 * probe connection goes out; only after it delivered do more connections
 * open, never more than max_connections_per_destination at once, and every
 * waiting message is delivered exactly once (I1, I2).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRemote } from '../support/remote-smtp.js';
import { enqueueMany, startHarness } from './harness.js';

const MESSAGES = 300;
const PER_DESTINATION = 3;

test(`a destination back from backoff: one probe first, then ≤ ${PER_DESTINATION} connections, ${MESSAGES} messages delivered once`, async () => {
  const remote = await startRemote({ refuse: true });
  after(() => remote.close());
  // No connection is retired mid-test (max_messages_per_connection): the remote counts a QUIT-ed socket as open until
  // its 'close' event, which can come after the replacement's accept — a measurement race, not a real 4th connection.
  const h = await startHarness(remote.port, { destination_backoff: '1m', max_connections_per_destination: PER_DESTINATION, max_messages_per_connection: 10_000 });
  after(() => h.stop());
  const start = h.clock.now();
  await enqueueMany(h.app.store, { count: MESSAGES, destination: h.destination, receivedAt: start });

  // The host is down: the first pass puts the destination into backoff.
  await h.app.qmgr.runOnce();
  const down = await h.app.store.gate.getDestination(h.destination);
  assert.equal(down?.health, 'backoff');
  assert.ok(remote.connections.length <= PER_DESTINATION);
  assert.equal(remote.transactions.length, 0);

  // It comes back, slow (20 ms before every reply). Nothing happens before the backoff ends.
  remote.setOptions({ refuse: false, delayMs: 20 });
  remote.clear();
  h.clock.set(down!.backoffUntil - 1);
  await h.app.qmgr.runOnce();
  assert.equal(remote.connections.length, 0, 'connected during the backoff');

  // Note how many transactions had completed when the second connection opened.
  let doneAtSecond: number | undefined;
  const second = remote.waitFor(() => {
    if (remote.connections.length < 2) return false;
    doneAtSecond = remote.transactions.length;
    return true;
  }, 60_000).catch(() => undefined);

  h.clock.set(down!.backoffUntil);
  for (let pass = 0; pass < 20; pass++) {
    const { byState } = await h.app.store.recipients.counts();
    if (byState.queued + byState.deferred + byState.inflight === 0) break;
    await h.app.qmgr.runOnce();
  }
  await second;

  const { byState } = await h.app.store.recipients.counts();
  const rcpts = remote.transactions.flatMap((t) => t.rcpts);
  assert.equal(rcpts.length, MESSAGES, 'transactions at the remote');
  assert.equal(new Set(rcpts).size, MESSAGES, 'a recipient was delivered twice');
  // Delivered messages are removed from the queue; nothing else may be left.
  assert.equal(byState.queued + byState.deferred + byState.inflight + byState.failed + byState.expired, 0, JSON.stringify(byState));

  assert.ok(remote.connections.length >= 2, 'expected the destination to be used with more than the probe');
  assert.ok(doneAtSecond !== undefined && doneAtSecond >= 1, `second connection opened after ${doneAtSecond} transaction(s): the probe had not delivered yet`);
  assert.ok(remote.maxConcurrent <= PER_DESTINATION, `peak ${remote.maxConcurrent} concurrent connections`);
  assert.ok(remote.maxConcurrent >= 2, 'after the probe, the destination should get more than one connection');
  assert.equal((await h.app.store.gate.getDestination(h.destination))?.health, 'ok');
});

/**
 * Greylisting: a remote that answers 450 4.7.1 to each recipient the first
 * time it sees it and 250 after. Each recipient is deferred on its own retry
 * schedule (retry_initial, one counted attempt), the destination itself is
 * never put into backoff (a per-recipient 4xx is not a connection failure),
 * and after retry_initial every recipient is delivered exactly once.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRemote } from '../support/remote-smtp.js';
import { enqueueMany, startHarness } from './harness.js';

const MESSAGES = 50;
const PER_MESSAGE = 3;
const RETRY_INITIAL = 5 * 60_000;

test('greylisted recipients retry on their own schedule; the destination stays healthy', async () => {
  const seen = new Set<string>();
  const remote = await startRemote({
    rcpt: (rcpt) => {
      if (seen.has(rcpt)) return undefined; // 250
      seen.add(rcpt);
      return '450 4.7.1 Greylisted, please try again later';
    },
  });
  after(() => remote.close());
  const h = await startHarness(remote.port, { retry_initial: '5m', destination_backoff: '1m' });
  after(() => h.stop());
  const start = h.clock.now();
  await enqueueMany(h.app.store, { count: MESSAGES, perMessage: PER_MESSAGE, destination: h.destination, receivedAt: start });
  const total = MESSAGES * PER_MESSAGE;

  await h.app.qmgr.runOnce();
  assert.equal(seen.size, total, 'every recipient was tried once');
  assert.equal(remote.transactions.length, 0, 'no DATA without an accepted recipient');
  const rows = (await h.app.store.recipients.listMessages({})).flatMap((m) => m.recipients);
  assert.equal(rows.length, total);
  for (const r of rows) {
    assert.equal(r.state, 'deferred', r.address);
    assert.equal(r.attempts, 1, r.address);
    assert.equal(r.lastReply?.code, 450);
    // random() = 0.5 → no jitter: exactly retry_initial after the attempt.
    assert.equal(r.nextAttemptAt, start + RETRY_INITIAL, r.address);
  }
  const dest = (await h.app.store.gate.listDestinations()).find((d) => d.key === h.destination);
  assert.equal(dest?.health ?? 'ok', 'ok');
  assert.equal(dest?.consecutiveFailures ?? 0, 0);

  // Not due yet: nothing is sent again.
  const rcptCommands = () => remote.commands.filter((c) => /^RCPT TO/i.test(c.line)).length;
  const before = rcptCommands();
  h.clock.set(start + RETRY_INITIAL - 1);
  await h.app.qmgr.runOnce();
  assert.equal(rcptCommands(), before, 'retried before retry_initial');

  h.clock.set(start + RETRY_INITIAL);
  for (let pass = 0; pass < 10; pass++) {
    const { byState } = await h.app.store.recipients.counts();
    if (byState.queued + byState.deferred + byState.inflight === 0) break;
    await h.app.qmgr.runOnce();
  }
  const { byState } = await h.app.store.recipients.counts();
  assert.equal(byState.queued + byState.deferred + byState.inflight + byState.failed + byState.expired, 0, JSON.stringify(byState));
  const delivered = remote.transactions.flatMap((t) => t.rcpts);
  assert.equal(delivered.length, total);
  assert.equal(new Set(delivered).size, total, 'a recipient was delivered twice');
  // Each recipient was asked for exactly twice: greylisted once, accepted once.
  assert.equal(rcptCommands(), 2 * total);
  const after2 = (await h.app.store.gate.listDestinations()).find((d) => d.key === h.destination);
  assert.equal(after2?.health ?? 'ok', 'ok');
});

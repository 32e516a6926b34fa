/**
 * Source addresses, pools and warm-up ([egress], destination/sources) over
 * real loopback sockets, the scheduler driven by hand on a fake clock:
 * - two sources 127.0.0.2 and 127.0.0.3 in a 3:1 pool: over 1,000 messages
 *   Postfix's smtp-sink sees both peer addresses in the pool's weights
 *   (±10 %), each with its source's EHLO name;
 * - warm-up: a source at its day's cap sends nothing more that UTC day, its
 *   mail waits (no attempt counted, nothing failed) and goes the next day
 *   under the next cap; with a second source in the pool, the mail over the
 *   cap goes from that one instead;
 * - a reply rule triggered through one source pauses that source only: the
 *   other delivers the rest at once;
 * - a tenant's mail leaves from its pool; a route's pool wins over it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enqueueMany, startHarness, type SchedulerHarness } from './harness.js';
import { requireSink, startSink } from '../support/smtp-sink.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { DAY_MS, utcDay } from '../../src/queue/warmup.js';

const A = { name: 'a', address: '127.0.0.2', ehlo_name: 'a.halcyon.test' };
const B = { name: 'b', address: '127.0.0.3', ehlo_name: 'b.halcyon.test' };

/** Passes at the present (fake) time until nothing more is due now; bounded. */
async function drain(h: SchedulerHarness, maxPasses = 50): Promise<void> {
  for (let i = 0; i < maxPasses; i++) {
    await h.app.qmgr.runOnce();
    const next = await h.app.store.recipients.nextDueAt();
    if (next === undefined || next > h.clock.now()) return;
  }
}

/** Messages the remote took, by the peer address of their connection. */
function byPeer(remote: Remote): Map<string, number> {
  const out = new Map<string, number>();
  for (const tx of remote.transactions) {
    const peer = remote.connections.find((c) => c.id === tx.connection)?.remoteAddress ?? '?';
    out.set(peer, (out.get(peer) ?? 0) + 1);
  }
  return out;
}

/** Recipients not delivered yet (waiting, in flight or failed). */
async function undelivered(h: SchedulerHarness): Promise<number> {
  const { byState } = await h.app.store.recipients.counts();
  return Object.entries(byState).filter(([state]) => state !== 'delivered').reduce((n, [, count]) => n + count, 0);
}

test('two sources in a 3:1 pool: over 1,000 messages smtp-sink sees both peer addresses in the weights (±10 %), each with its EHLO name', async (t) => {
  if (!requireSink(t)) return;
  const sink = await startSink();
  let h: SchedulerHarness | undefined;
  try {
    h = await startHarness(sink.port, { max_connections_per_destination: 10, initial_connections_per_destination: 10 }, {
      egress: { sources: [A, B], pools: [{ name: 'main', sources: [{ source: 'a', weight: 3 }, { source: 'b', weight: 1 }] }] },
    });
    await enqueueMany(h.app.store, { count: 1000, destination: h.destination, receivedAt: h.clock.now() });
    await drain(h);
    const deadline = Date.now() + 20_000;
    while (sink.dumps().length < 1000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const dumps = sink.dumps();
    assert.equal(dumps.length, 1000, 'every message reached the sink once');
    const a = dumps.filter((d) => d.clientAddr === A.address);
    const b = dumps.filter((d) => d.clientAddr === B.address);
    assert.equal(a.length + b.length, 1000, `peers: ${[...new Set(dumps.map((d) => d.clientAddr))].join(', ')}`);
    t.diagnostic(`from ${A.address}: ${a.length}, from ${B.address}: ${b.length} (weights 3:1 → 750:250)`);
    assert.ok(Math.abs(a.length - 750) <= 75, `${a.length} from ${A.address}, expected 750 ± 75`);
    assert.ok(Math.abs(b.length - 250) <= 25, `${b.length} from ${B.address}, expected 250 ± 25`);
    assert.deepEqual([...new Set(a.map((d) => d.helo))], [A.ehlo_name]);
    assert.deepEqual([...new Set(b.map((d) => d.helo))], [B.ehlo_name]);
    assert.equal(await undelivered(h), 0);
  } finally {
    await h?.stop();
    await sink.stop();
  }
});

test('warm-up: a source at its cap sends nothing more that UTC day; its mail waits (no attempt, no failure) and goes the next day', async () => {
  const remote = await startRemote();
  let h: SchedulerHarness | undefined;
  try {
    h = await startHarness(remote.port, {}, {
      egress: { sources: [{ ...A, warmup: ['3/day', '5/day'] }], pools: [{ name: 'main', sources: [{ source: 'a' }] }] },
    });
    const day1 = utcDay(h.clock.now()) * DAY_MS;
    h.clock.set(day1 + 10 * 3_600_000);
    await enqueueMany(h.app.store, { count: 20, destination: h.destination, receivedAt: h.clock.now() });
    await drain(h);
    assert.equal(remote.transactions.length, 3, 'day 1: the cap of 3');
    // Later that day: nothing more (due only at midnight UTC).
    h.clock.advance(13 * 3_600_000 + 59 * 60_000);
    await drain(h);
    assert.equal(remote.transactions.length, 3, 'still day 1 at 23:59 UTC');
    assert.equal(await h.app.store.recipients.nextDueAt(), day1 + DAY_MS, 'the rest is due when the next UTC day begins');
    const waiting = (await h.app.store.recipients.listMessages({ limit: 100 })).flatMap((m) => m.recipients).filter((r) => r.state !== 'delivered');
    assert.equal(waiting.length, 17);
    assert.ok(waiting.every((r) => r.attempts === 0 && r.state !== 'failed'), 'no attempt counted, nothing failed or bounced');
    // `halcyon destinations` (the admin API) shows the source and its warm-up today.
    const row = (await h.app.admin.destinations()).find((d) => d.key === `${h!.destination}@a`);
    assert.deepEqual(row?.source, { name: 'a', address: A.address, ehloName: A.ehlo_name, warmup: { scope: h.destination, day: 1, cap: 3, sent: 3 } });
    // Day 2: the next cap (5).
    h.clock.set(day1 + DAY_MS + 60_000);
    await drain(h);
    assert.equal(remote.transactions.length, 8, 'day 2: 5 more');
    // Day 3: the schedule is over, no cap.
    h.clock.set(day1 + 2 * DAY_MS + 60_000);
    await drain(h);
    assert.equal(remote.transactions.length, 20);
    assert.equal(await undelivered(h), 0);
    assert.deepEqual([...byPeer(remote).keys()], [A.address]);
  } finally {
    await h?.stop();
    await remote.close();
  }
});

test('warm-up in a pool: what is over one source\'s cap goes from the other source', async () => {
  const remote = await startRemote();
  let h: SchedulerHarness | undefined;
  try {
    h = await startHarness(remote.port, {}, {
      egress: { sources: [{ ...A, warmup: ['3/day'] }, B], pools: [{ name: 'main', sources: [{ source: 'a' }, { source: 'b' }] }] },
    });
    await enqueueMany(h.app.store, { count: 20, destination: h.destination, receivedAt: h.clock.now() });
    await drain(h);
    assert.deepEqual(Object.fromEntries(byPeer(remote)), { [A.address]: 3, [B.address]: 17 });
    assert.equal(await undelivered(h), 0);
  } finally {
    await h?.stop();
    await remote.close();
  }
});

test('a rule triggered through one source pauses that source only; the other delivers the rest at once', async () => {
  // The remote throttles 127.0.0.2 (421 4.7.28 at its first RCPT) and takes everything from 127.0.0.3.
  let remote: Remote | undefined;
  remote = await startRemote({
    rcpt: (_rcpt, ctx) => (remote?.connections.find((c) => c.id === ctx.connection)?.remoteAddress === A.address
      ? '421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address.' : undefined),
  });
  let h: SchedulerHarness | undefined;
  try {
    h = await startHarness(remote.port, { initial_connections_per_destination: 1, rules: [{ code: 421, match: 'unusual rate', action: 'suspend', for: '1h' }] }, {
      egress: { sources: [A, B], pools: [{ name: 'main', sources: [{ source: 'a' }, { source: 'b' }] }] },
    });
    await enqueueMany(h.app.store, { count: 20, destination: h.destination, receivedAt: h.clock.now() });
    await drain(h);
    const fromA = remote.connections.filter((c) => c.remoteAddress === A.address);
    assert.equal(fromA.length, 1, 'one connection from the throttled source, then it is paused');
    assert.deepEqual(Object.fromEntries(byPeer(remote)), { [B.address]: 20 }, 'every message went from the other source, at once');
    assert.equal(await undelivered(h), 0);
    // The pause is the source's: its key is suspended, the other's is not.
    const view = h.app.destinations.view;
    assert.ok(view.politeness(`${h.destination}@a`).rules.length === 1, 'the rule is in force for (a, destination)');
    assert.equal(view.politeness(`${h.destination}@b`).rules.length, 0, 'and not for (b, destination)');
    // After the hour, new mail goes from both again.
    h.clock.advance(3_600_000 + 1000);
    remote.setOptions({ rcpt: () => undefined });
    await enqueueMany(h.app.store, { count: 10, destination: h.destination, receivedAt: h.clock.now() });
    await drain(h);
    assert.ok((byPeer(remote).get(A.address) ?? 0) > 0, 'the paused source sends again after its pause');
  } finally {
    await h?.stop();
    await remote.close();
  }
});

test('pools per tenant and per route: a tenant\'s mail leaves from its pool, a route\'s pool wins over the tenant\'s', async () => {
  const remote = await startRemote();
  let h: SchedulerHarness | undefined;
  try {
    h = await startHarness(remote.port, {}, {
      egress: {
        sources: [A, B],
        pools: [{ name: 'main', sources: [{ source: 'a' }] }, { name: 'acme', sources: [{ source: 'b' }] }],
        tenant_pools: { acme: 'acme' },
      },
      routes: { 'dead.test': `127.0.0.1:${remote.port}`, 'routed.test': { hosts: [`127.0.0.1:${remote.port}`], pool: 'main' } },
    });
    const enqueue = (tenant: string | undefined, i: number, domain = 'dead.test') => h!.app.store.messages.enqueue({
      sender: 'sender@local.test', params: { smtputf8: false }, receivedAt: h!.clock.now(), ...(tenant !== undefined ? { tenant } : {}),
      trace: { clientIp: '127.0.0.1', clientHelo: 'client.test', protocol: 'ESMTP' }, body: Buffer.from(`Subject: ${i}\r\n\r\nx\r\n`),
      recipients: [{ address: `u${i}@${domain}`, destination: h!.destination }],
    });
    await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => enqueue('acme', i)), ...Array.from({ length: 5 }, (_, i) => enqueue(undefined, 10 + i)),
      ...Array.from({ length: 3 }, (_, i) => enqueue('acme', 20 + i, 'routed.test')),
    ]);
    await drain(h);
    assert.deepEqual(Object.fromEntries(byPeer(remote)), { [A.address]: 8, [B.address]: 5 });
    const routedFrom = new Set(remote.transactions.filter((tx) => /^Subject: 2\d\r?$/m.test(tx.data.toString())).map((tx) => remote.connections.find((c) => c.id === tx.connection)?.remoteAddress));
    assert.deepEqual([...routedFrom], [A.address], 'the route\'s pool, although the tenant has one');
    const acmeFrom = new Set(remote.transactions.filter((tx) => /^Subject: [0-4]\r?$/m.test(tx.data.toString())).map((tx) => remote.connections.find((c) => c.id === tx.connection)?.remoteAddress));
    assert.deepEqual([...acmeFrom], [B.address], 'the tenant\'s mail left from its pool');
  } finally {
    await h?.stop();
    await remote.close();
  }
});

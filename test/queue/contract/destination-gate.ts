/**
 * The DestinationGate contract, for every implementation, with two handles
 * standing for two nodes: the connection cap holds across nodes; after a
 * backoff exactly one probe goes out, cluster-wide; health changes are
 * compare-and-set (one backoff step per failure wave); a node's slots come
 * back on its restart or when their lease runs out; a learned limit lowers
 * the cap (until it expires) and is written without moving the generation,
 * merged field by field with what other nodes wrote (both survive; the
 * stricter limit holds), and a health transition keeps it; the rate bucket
 * is shared; the listing counts every node's connections.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AcquireRequest } from '../../../src/queue/destination-gate.js';
import type { DestinationRule, DestinationState } from '../../../src/queue/model.js';
import { message, T0, withQueue, type Implementation } from './harness.js';

const ask = (node: string, now = T0, over: Partial<AcquireRequest> = {}): AcquireRequest =>
  ({ destination: 'mx.test', node, now, leaseUntil: now + 60_000, maxConnections: 2, ...over });

const backoff = (until: number): DestinationState =>
  ({ key: 'mx.test', health: 'backoff', backoffUntil: until, backoffMs: 60_000, consecutiveFailures: 1, lastError: '421 busy', updatedAt: T0 });

export function destinationGateContract(impl: Implementation): void {
  describe(`DestinationGate contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('max connections hold across nodes; a released slot is granted again', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const grants = await Promise.all([q.queue.gate.acquire(ask('a')), b.gate.acquire(ask('b')), q.queue.gate.acquire(ask('a')), b.gate.acquire(ask('b'))]);
      assert.deepEqual(grants.map((g) => g.kind).sort(), ['go', 'go', 'wait', 'wait']);
      const waits = grants.filter((g) => g.kind === 'wait');
      for (const w of waits) assert.equal(w.kind === 'wait' && w.reason, 'full');
      const first = grants.find((g) => g.kind === 'go')!;
      assert.ok(first.kind === 'go');
      await q.queue.gate.releaseSlot(first.slot);
      assert.equal((await b.gate.acquire(ask('b'))).kind, 'go');
      const list = await b.gate.listDestinations();
      assert.deepEqual(list.map((d) => [d.key, d.connections]), [['mx.test', 2]]);
    }));

    test('after a backoff exactly one probe, whichever node asks; its success opens the gate', () => withQueue(impl, async (q) => {
      const b = await q.open();
      await q.queue.gate.putDestination(backoff(T0 + 1000));
      const during = await b.gate.acquire(ask('b', T0 + 999));
      assert.deepEqual(during, { kind: 'wait', reason: 'backoff', until: T0 + 1000 });
      const [x, y, z] = await Promise.all([q.queue.gate.acquire(ask('a', T0 + 1000)), b.gate.acquire(ask('b', T0 + 1000)), b.gate.acquire(ask('b', T0 + 1000))]);
      const kinds = [x, y, z].map((g) => g.kind);
      assert.deepEqual(kinds.filter((k) => k === 'probe'), ['probe'], 'one probe cluster-wide');
      assert.deepEqual([x, y, z].filter((g) => g.kind === 'wait').map((g) => g.kind === 'wait' && g.reason), ['probing', 'probing']);
      const probe = [x, y, z].find((g) => g.kind === 'probe')!;
      assert.ok(probe.kind === 'probe');
      const up = await q.queue.gate.transition('mx.test', probe.generation,
        { key: 'mx.test', health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: T0 + 1001 });
      assert.equal(up.applied, true);
      assert.equal(up.row?.generation, probe.generation + 1);
      assert.equal((await b.gate.acquire(ask('b', T0 + 1001))).kind, 'go', 'the probe holds one slot, the cap allows one more');
    }));

    test('compare-and-set: a failure wave moves the row on once, whichever node sees it', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const [g1, g2] = await Promise.all([q.queue.gate.acquire(ask('a')), b.gate.acquire(ask('b'))]);
      assert.ok(g1.kind === 'go' && g2.kind === 'go');
      assert.equal(g1.generation, 0);
      const [r1, r2] = await Promise.all([
        q.queue.gate.transition('mx.test', g1.generation, backoff(T0 + 60_000)),
        b.gate.transition('mx.test', g2.generation, { ...backoff(T0 + 120_000), backoffMs: 120_000, consecutiveFailures: 2 }),
      ]);
      assert.equal([r1, r2].filter((r) => r.applied).length, 1, 'one backoff step per wave');
      const row = await b.gate.getDestination('mx.test');
      assert.equal(row?.generation, 1);
      assert.deepEqual(r1.row, row);
      assert.deepEqual(r2.row, row);
    }));

    test('a node\'s slots come back on its restart, and any node\'s when their lease runs out', () => withQueue(impl, async (q) => {
      const b = await q.open();
      await q.queue.gate.acquire(ask('a', T0, { leaseUntil: T0 + 100 }));
      await b.gate.acquire(ask('b', T0, { leaseUntil: T0 + 500 }));
      assert.equal((await q.queue.gate.acquire(ask('a'))).kind, 'wait');
      assert.equal(await q.queue.gate.releaseNodeSlots('a'), 1);
      assert.equal((await q.queue.gate.acquire(ask('a', T0, { leaseUntil: T0 + 100 }))).kind, 'go');
      const full = await q.queue.gate.acquire(ask('a', T0 + 1));
      assert.deepEqual(full, { kind: 'wait', reason: 'full', until: T0 + 100 }, 'until the earliest lease runs out');
      assert.equal((await b.gate.acquire(ask('b', T0 + 100))).kind, 'go', 'an expired slot does not count');
      assert.equal(await b.gate.releaseExpiredSlots(T0 + 500), 2);
    }));

    test('a probe whose node died: another node probes after the probe\'s lease', () => withQueue(impl, async (q) => {
      const b = await q.open();
      await q.queue.gate.putDestination(backoff(T0));
      assert.equal((await q.queue.gate.acquire(ask('a', T0, { leaseUntil: T0 + 300 }))).kind, 'probe');
      assert.deepEqual(await b.gate.acquire(ask('b', T0 + 299)), { kind: 'wait', reason: 'probing', until: T0 + 300 });
      assert.equal((await b.gate.acquire(ask('b', T0 + 300))).kind, 'probe');
    }));

    test('renewSlot keeps a slot past its first lease; a learned limit lowers the cap', () => withQueue(impl, async (q) => {
      const g = await q.queue.gate.acquire(ask('a', T0, { leaseUntil: T0 + 100 }));
      assert.ok(g.kind === 'go');
      assert.equal(await q.queue.gate.renewSlot(g.slot, T0 + 1000), true);
      assert.equal((await q.queue.gate.listDestinations())[0]?.connections, 1);
      await q.queue.gate.putDestination({ key: 'mx.test', health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: T0, limits: { maxConnections: 1 } });
      assert.deepEqual((await q.queue.gate.getDestination('mx.test'))?.limits, { maxConnections: 1 });
      assert.equal((await q.queue.gate.acquire(ask('a', T0 + 500))).kind, 'wait', 'the learned limit of 1 is taken');
      await q.queue.gate.releaseSlot(g.slot);
      assert.equal(await q.queue.gate.renewSlot(g.slot, T0 + 2000), false);
    }));

    test('the rate is one bucket for every node', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const rate = { count: 2, perMs: 60_000 };
      assert.equal((await q.queue.gate.takeToken('mx.test', T0, rate)).ok, true);
      assert.equal((await b.gate.takeToken('mx.test', T0, rate)).ok, true);
      const third = await q.queue.gate.takeToken('mx.test', T0, rate);
      assert.deepEqual(third, { ok: false, until: T0 + 30_000 });
      assert.equal((await b.gate.takeToken('mx.test', T0 + 30_000, rate)).ok, true);
    }));

    test('the rate under concurrency: nodes taking at once never get more tokens than the bucket holds', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const rate = { count: 5, perMs: 60_000 };
      const takes = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? q.queue.gate : b.gate).takeToken('mx.test', T0, rate)));
      assert.equal(takes.filter((t) => t.ok).length, 5);
      assert.ok(takes.filter((t) => !t.ok).every((t) => t.until === T0 + 12_000), 'the next token in 60 s / 5');
      // Refilled by the time passed, never above the bucket's size.
      const later = await Promise.all(Array.from({ length: 8 }, () => b.gate.takeToken('mx.test', T0 + 3_600_000, rate)));
      assert.equal(later.filter((t) => t.ok).length, 5);
    }));

    test('putLimits: learned limits shared with every node, without moving health or generation (a wave\'s compare-and-set still applies)', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const g = await q.queue.gate.acquire(ask('a'));
      assert.ok(g.kind === 'go');
      await b.gate.putLimits('mx.test', { maxConnections: 1, maxConnectionsUntil: T0 + 60_000, maxRecipients: 3, maxRecipientsUntil: T0 + 60_000 }, T0);
      const row = await q.queue.gate.getDestination('mx.test');
      assert.equal(row?.generation, 0);
      assert.equal(row?.health, 'ok');
      assert.equal(row?.limits?.maxRecipients, 3);
      // The ceiling holds for every node until it expires.
      assert.equal((await b.gate.acquire(ask('b'))).kind, 'wait');
      const later = await b.gate.acquire(ask('b', T0 + 60_000));
      assert.equal(later.kind, 'go');
      assert.equal((await q.queue.gate.transition('mx.test', g.generation, backoff(T0 + 60_000))).applied, true);
    }));

    test('putLimits merges: what two nodes learned both survive; the stricter limit holds until the later expiry; rules by index', () => withQueue(impl, async (q) => {
      const a = q.queue.gate;
      const b = (await q.open()).gate;
      const rule = (index: number, until: number, reply = '421 4.7.0 slow down'): DestinationRule =>
        ({ index, action: 'suspend', rule: `rule ${index}`, until, since: until - 60_000, reply });
      // Node a learns a recipient limit, node b a connection ceiling: b's write must not erase a's.
      await a.putLimits('mx.test', { maxRecipients: 3, maxRecipientsUntil: T0 + 60_000, recipientsReply: '452 4.5.3 too many recipients' }, T0);
      await b.putLimits('mx.test', { maxConnections: 1, maxConnectionsUntil: T0 + 60_000, connectionsReply: '421 4.7.0 too many connections' }, T0);
      assert.deepEqual((await b.getDestination('mx.test'))?.limits, {
        maxRecipients: 3, maxRecipientsUntil: T0 + 60_000, recipientsReply: '452 4.5.3 too many recipients',
        maxConnections: 1, maxConnectionsUntil: T0 + 60_000, connectionsReply: '421 4.7.0 too many connections',
      });
      // b, not knowing a's 3, learns 5 later: the stricter 3 holds, until b's later expiry (a new observation restarts it).
      await b.putLimits('mx.test', { maxRecipients: 5, maxRecipientsUntil: T0 + 120_000, recipientsReply: '452 later' }, T0 + 10);
      const after = (await a.getDestination('mx.test'))?.limits;
      assert.deepEqual([after?.maxRecipients, after?.maxRecipientsUntil, after?.recipientsReply, after?.maxConnections], [3, T0 + 120_000, '452 4.5.3 too many recipients', 1]);
      // Once a value has expired, a laxer one is taken; the expired ceiling goes.
      await a.putLimits('mx.test', { maxRecipients: 10, maxRecipientsUntil: T0 + 300_000, rules: [rule(0, T0 + 250_000)] }, T0 + 200_000);
      await b.putLimits('mx.test', { rules: [rule(0, T0 + 240_000, 'older'), rule(1, T0 + 260_000)] }, T0 + 200_000);
      assert.deepEqual((await b.getDestination('mx.test'))?.limits, {
        maxRecipients: 10, maxRecipientsUntil: T0 + 300_000, rules: [rule(0, T0 + 250_000), rule(1, T0 + 260_000)],
      });
      // Many writers at once, each with a field (a rule) of its own: every one survives.
      await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).putLimits('mx.test', { rules: [rule(10 + i, T0 + 400_000)] }, T0 + 200_001)));
      const rules = (await a.getDestination('mx.test'))?.limits?.rules ?? [];
      assert.deepEqual(rules.map((r) => r.index), [0, 1, ...Array.from({ length: 12 }, (_, i) => 10 + i)]);
      assert.equal((await a.getDestination('mx.test'))?.generation, 0, 'the generation does not move');
    }));

    test('putLimits: the adaptive rate of a provider scope is shared; a later cut wins over growth from an earlier one', () => withQueue(impl, async (q) => {
      const a = q.queue.gate;
      const b = (await q.open()).gate;
      const rate = (perMinute: number, cutAt: number) => ({ perMinute, cutAt, until: T0 + 3_600_000, reply: '421 4.7.28 unusual rate' });
      await a.putLimits('provider:google', { rate: rate(300, T0) }, T0);
      // b grew it from the same cut: the higher holds.
      await b.putLimits('provider:google', { rate: rate(310, T0) }, T0 + 1);
      assert.deepEqual((await a.getDestination('provider:google'))?.limits?.rate, rate(310, T0));
      // a cut again later; b's growth from the earlier cut must not undo it.
      await a.putLimits('provider:google', { rate: rate(155, T0 + 10) }, T0 + 10);
      await b.putLimits('provider:google', { rate: rate(320, T0) }, T0 + 11);
      assert.deepEqual((await b.getDestination('provider:google'))?.limits?.rate, rate(155, T0 + 10));
      // A restart (a new handle on the same store) reads it back.
      assert.equal((await (await q.open()).gate.getDestination('provider:google'))?.limits?.rate?.perMinute, 155);
    }));

    test('a failure or a recovery keeps what any node learned meanwhile (a transition changes health only)', () => withQueue(impl, async (q) => {
      const b = await q.open();
      const g = await q.queue.gate.acquire(ask('a'));
      assert.ok(g.kind === 'go');
      await b.gate.putLimits('mx.test', { maxRecipients: 3, maxRecipientsUntil: T0 + 60_000 }, T0);
      // The wave's failure carries the row as it was granted (no limits then).
      const r = await q.queue.gate.transition('mx.test', g.generation, backoff(T0 + 1000));
      assert.equal(r.applied, true);
      assert.equal(r.row?.health, 'backoff');
      assert.deepEqual((await b.gate.getDestination('mx.test'))?.limits, { maxRecipients: 3, maxRecipientsUntil: T0 + 60_000 });
    }));

    test('the listing has rows, waiting recipients and open connections of every node', () => withQueue(impl, async (q) => {
      await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@y.test', destination: 'y.test' }]));
      await q.queue.gate.putDestination({ ...backoff(T0 + 5), key: 'z.test' });
      await (await q.open()).gate.acquire(ask('b', T0, { destination: 'w.test' }));
      const list = await q.queue.gate.listDestinations();
      assert.deepEqual(list.map((d) => [d.key, d.health, d.queued, d.connections]),
        [['w.test', 'ok', 0, 1], ['x.test', 'ok', 1, 0], ['y.test', 'ok', 1, 0], ['z.test', 'backoff', 0, 0]]);
    }));
  });
}

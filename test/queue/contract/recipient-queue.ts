/**
 * The RecipientQueue contract, for every implementation, with two handles
 * standing for two nodes: claims never overlap (I2); a final state never
 * changes (I1) and an outcome for a lease another node holds is not applied;
 * a node on start releases its own leases only, any node releases expired
 * ones; leases can be renewed and claims given back; each report and each
 * expiry is claimed by one node, a message's owed reports whole (never split
 * between nodes, never while one of its recipients is in an attempt); claims
 * skip backoff and excluded destinations.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RESCAN_MS } from '../../../src/queue/removal-candidates.js';
import { message, reply, T0, withQueue, type Implementation } from './harness.js';

const lease = (now: number, owner: string, limit = 100) => ({ now, limit, owner, leaseUntil: now + 60_000 });

export function recipientQueueContract(impl: Implementation): void {
  describe(`RecipientQueue contract: ${impl.name}`, { skip: impl.skip }, () => {
    test('two nodes claiming at once never claim the same recipient (I2)', () => withQueue(impl, async (q) => {
      await Promise.all(Array.from({ length: 150 }, (_, i) => q.queue.messages.enqueue(message([
        { address: `a${i}@d${i % 5}.test`, destination: `d${i % 5}.test` }, { address: `b${i}@e.test`, destination: 'e.test' },
      ]))));
      const b = await q.open();
      const seen = new Map<number, string>();
      for (let round = 0; round < 200; round++) {
        const [x, y] = await Promise.all([q.queue.recipients.claimDue(lease(T0, 'a', 7)), b.recipients.claimDue(lease(T0, 'b', 5))]);
        if (x.length + y.length === 0) break;
        for (const [owner, rows] of [['a', x], ['b', y]] as const) {
          for (const r of rows) {
            assert.equal(seen.get(r.id), undefined, `recipient ${r.id} claimed by ${seen.get(r.id)} and ${owner}`);
            seen.set(r.id, owner);
            assert.equal(r.state, 'inflight');
          }
        }
      }
      assert.equal(seen.size, 300);
      assert.equal((await b.recipients.counts()).byState.inflight, 300);
    }));

    test('I1: a final state never changes; an outcome for a lease another node holds is ignored', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }]));
      const [r1, r2] = await q.queue.recipients.claimDue(lease(T0, 'a'));
      assert.deepEqual(await q.queue.recipients.recordOutcomes([{ recipientId: r1!.id, outcome: { kind: 'delivered', reply } }], T0, 'a'), [r1!.id]);
      assert.deepEqual(await q.queue.recipients.recordOutcomes([{ recipientId: r1!.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } }], T0 + 1, 'a'), [], 'final');
      assert.deepEqual(await q.queue.recipients.recordOutcomes([{ recipientId: r2!.id, outcome: { kind: 'delivered', reply } }], T0, 'b'), [], 'b does not hold the lease');
      const rows = await q.queue.recipients.getRecipients(id);
      assert.deepEqual(rows.map((r) => r.state), ['delivered', 'inflight']);
      assert.deepEqual(rows[0]!.lastReply, reply);
      const history = await q.queue.recipients.getAttempts(id);
      assert.deepEqual(history.map((h) => [h.recipientId, h.state]), [[r1!.id, 'delivered']]);
    }));

    test('one batch of outcomes: applied in the order given, each tested alone, a recipient named twice counts once', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message(['a', 'b', 'c', 'd'].map((x) => ({ address: `${x}@x.test`, destination: 'x.test' }))));
      const [a, b, c, d] = await q.queue.recipients.claimDue(lease(T0, 'a'));
      await q.queue.recipients.recordOutcomes([{ recipientId: d!.id, outcome: { kind: 'delivered', reply } }], T0, 'a');
      const later = { kind: 'deferred', reply: { code: 451, text: 'later' }, nextAttemptAt: T0 + 60_000, countAttempt: true } as const;
      const applied = await q.queue.recipients.recordOutcomes([
        { recipientId: c!.id, outcome: later },
        { recipientId: a!.id, outcome: { kind: 'delivered', reply } },
        { recipientId: c!.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } },
        { recipientId: d!.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } },
        { recipientId: b!.id, outcome: { kind: 'expired', reply: { code: 451, text: 'expired' } } },
      ], T0 + 1, 'a');
      assert.deepEqual(applied, [c!.id, a!.id, b!.id]);
      const rows = await q.queue.recipients.getRecipients(id);
      assert.deepEqual(rows.map((r) => [r.state, r.attempts, r.nextAttemptAt === T0 + 60_000]), [
        ['delivered', 1, false], ['expired', 0, false], ['deferred', 1, true], ['delivered', 1, false]]);
      const history = await q.queue.recipients.getAttempts(id);
      assert.deepEqual(history.map((h) => [h.recipientId, h.state]), [[d!.id, 'delivered'], [c!.id, 'deferred'], [a!.id, 'delivered'], [b!.id, 'expired']]);
    }));

    test('an outcome needs a claim: a waiting recipient nobody claimed is not touched by any owner', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }]));
      const [r] = await q.queue.recipients.getRecipients(id);
      assert.deepEqual(await q.queue.recipients.recordOutcomes([{ recipientId: r!.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } }], T0, 'a'), []);
      assert.deepEqual((await q.queue.recipients.getRecipients(id)).map((x) => [x.state, x.attempts]), [['queued', 0]]);
      assert.deepEqual(await q.queue.recipients.getAttempts(id), []);
    }));

    test('claimWaiting: the waiting recipients of one message, whatever their due time or destination; not those in flight or final', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([
        { address: 'a@x.test', destination: 'x.test' }, { address: 'b@y.test', destination: 'y.test' }, { address: 'c@z.test', destination: 'z.test' },
        { address: 'd@w.test', destination: 'w.test' },
      ]));
      const other = await q.queue.messages.enqueue(message([{ address: 'e@x.test', destination: 'x.test' }]));
      await q.queue.gate.putDestination({ key: 'y.test', health: 'backoff', backoffUntil: T0 + 600_000, backoffMs: 600_000, consecutiveFailures: 1, updatedAt: T0 });
      const [inflight] = await q.queue.recipients.claimDue({ ...lease(T0, 'n1', 1), excludeDestinations: ['y.test', 'z.test', 'w.test'] });
      assert.equal(inflight?.address, 'a@x.test');
      const [zed] = await q.queue.recipients.claimDue({ ...lease(T0, 'n1', 1), excludeDestinations: ['x.test', 'y.test', 'w.test'] });
      await q.queue.recipients.recordOutcomes([{ recipientId: zed!.id, outcome: { kind: 'deferred', reply: { code: 451, text: 'later' }, nextAttemptAt: T0 + 3_600_000, countAttempt: true } }], T0, 'n1');
      const [wed] = await q.queue.recipients.claimDue({ ...lease(T0, 'n1', 1), excludeDestinations: ['x.test', 'y.test', 'z.test'] });
      await q.queue.recipients.recordOutcomes([{ recipientId: wed!.id, outcome: { kind: 'delivered', reply } }], T0, 'n1');
      const claimed = await q.queue.recipients.claimWaiting(id, { now: T0 + 1, owner: 'admin', leaseUntil: T0 + 60_000 });
      assert.deepEqual(claimed.map((r) => [r.address, r.state]).sort(), [['b@y.test', 'inflight'], ['c@z.test', 'inflight']]);
      assert.deepEqual((await q.queue.recipients.getRecipients(id)).map((r) => r.state), ['inflight', 'inflight', 'inflight', 'delivered']);
      assert.deepEqual((await q.queue.recipients.getRecipients(other)).map((r) => r.state), ['queued'], 'another message is not claimed');
      assert.deepEqual(await q.queue.recipients.recordOutcomes([{ recipientId: inflight!.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } }], T0 + 2, 'admin'), [],
        'the claimer cannot record for a recipient another holds');
      assert.deepEqual((await q.queue.recipients.recordOutcomes(claimed.map((r) => ({ recipientId: r.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } })), T0 + 2, 'admin')).length, 2);
    }));

    test('fair claim: within a destination the due tenants take turns, a message each, up to perDestination; no tenant is one tenant', () => withQueue(impl, async (q) => {
      const send = (tenant: string | undefined, n: number, dest: string) => Promise.all(Array.from({ length: n }, (_, i) => q.queue.messages.enqueue(
        message([{ address: `${tenant ?? 'none'}${i}@${dest}`, destination: dest }, { address: `${tenant ?? 'none'}${i}b@${dest}`, destination: dest }],
          tenant === undefined ? {} : { tenant }))));
      q.clock.now = T0;
      await send('big', 40, 'x.test');
      await send(undefined, 2, 'x.test');
      q.clock.now = T0 + 1_000;
      await send('small', 3, 'x.test');
      await send('big', 5, 'y.test');
      const tenantOf = (address: string): string => address.replace(/\d+b?@.*$/, '');
      const first = await q.queue.recipients.claimDue({ ...lease(T0 + 2_000, 'n1'), perDestination: 6 });
      const x = first.filter((r) => r.destination === 'x.test');
      // A message's recipients together; the tenants in turns ('' first, as it sorts first), 6 messages of x.test.
      assert.deepEqual(x.map((r) => tenantOf(r.address)), ['none', 'none', 'big', 'big', 'small', 'small', 'none', 'none', 'big', 'big', 'small', 'small']);
      assert.equal(first.filter((r) => r.destination === 'y.test').length, 10, 'another destination has a cap of its own');
      // The rest: big's 38 left and small's last; small's comes in the second turn, not after big's backlog.
      const rest = await q.queue.recipients.claimDue(lease(T0 + 2_000, 'n1', 200));
      assert.equal(rest.length, 2 * 39);
      assert.deepEqual(rest.slice(0, 4).map((r) => tenantOf(r.address)), ['big', 'big', 'small', 'small']);
      // With one tenant the claim is in due order, as ever.
      assert.deepEqual(rest.slice(4).map((r) => r.nextAttemptAt), rest.slice(4).map((r) => r.nextAttemptAt).sort((a, b) => a - b));
      assert.deepEqual((await q.queue.recipients.counts()).byState.queued, 0);
    }));

    test('fair claim: pairRows bounds the rows read per destination and tenant; a pair cut short leaves its last message whole for later', () => withQueue(impl, async (q) => {
      q.clock.now = T0;
      const rcpts = (m: string, n: number, dest: string) => Array.from({ length: n }, (_, j) => ({ address: `${m}r${j}@${dest}`, destination: dest }));
      for (let i = 0; i < 3; i++) await q.queue.messages.enqueue(message(rcpts(`m${i}`, 3, 'x.test')));
      for (let i = 0; i < 5; i++) await q.queue.messages.enqueue(message([{ address: `one${i}@y.test`, destination: 'y.test' }]));
      const byDest = (rows: readonly { destination: string; address: string }[], d: string) => rows.filter((r) => r.destination === d).map((r) => r.address);
      // x.test: the first 4 due rows end inside m1, so m1 waits (whole) for the next claim; y.test: one row per message.
      const first = await q.queue.recipients.claimDue({ ...lease(T0 + 1, 'n1'), perDestination: 2, pairRows: 4 });
      assert.deepEqual(byDest(first, 'x.test'), ['m0r0@x.test', 'm0r1@x.test', 'm0r2@x.test']);
      assert.deepEqual(byDest(first, 'y.test'), ['one0@y.test', 'one1@y.test']);
      // Not cut short (6 rows of x.test read, fewer than 7): two whole messages, as perDestination allows.
      const second = await q.queue.recipients.claimDue({ ...lease(T0 + 1, 'n1'), perDestination: 2, pairRows: 7 });
      assert.deepEqual(byDest(second, 'x.test'), ['m1r0@x.test', 'm1r1@x.test', 'm1r2@x.test', 'm2r0@x.test', 'm2r1@x.test', 'm2r2@x.test']);
      assert.deepEqual(byDest(second, 'y.test'), ['one2@y.test', 'one3@y.test']);
      // A first message with more rows than pairRows is claimed in part rather than not at all.
      await q.queue.messages.enqueue(message(rcpts('big', 3, 'z.test')));
      const third = await q.queue.recipients.claimDue({ ...lease(T0 + 1, 'n1'), perDestination: 2, pairRows: 2 });
      assert.deepEqual(byDest(third, 'z.test'), ['bigr0@z.test', 'bigr1@z.test']);
      assert.deepEqual(byDest(third, 'y.test'), ['one4@y.test']);
    }));

    test('fair claim: a tenant\'s held, not yet due or excluded rows are skipped, its other rows still claimed', () => withQueue(impl, async (q) => {
      q.clock.now = T0;
      const held = await q.queue.messages.enqueue(message([{ address: 'h@x.test', destination: 'x.test' }], { tenant: 't' }));
      await q.queue.recipients.setHeld(held, true);
      const later = await q.queue.messages.enqueue(message([{ address: 'l@x.test', destination: 'x.test' }], { tenant: 't' }));
      const [l] = await q.queue.recipients.claimDue(lease(T0, 'n1'));
      await q.queue.recipients.recordOutcomes([{ recipientId: l!.id, outcome: { kind: 'deferred', reply: { code: 451, text: 'later' }, nextAttemptAt: T0 + 60_000, countAttempt: true } }], T0, 'n1');
      await q.queue.messages.enqueue(message([{ address: 'ok@x.test', destination: 'x.test' }], { tenant: 't' }));
      await q.queue.messages.enqueue(message([{ address: 'z@z.test', destination: 'z.test' }], { tenant: 't' }));
      assert.deepEqual((await q.queue.recipients.claimDue({ ...lease(T0 + 1, 'n1'), excludeDestinations: ['z.test'], perDestination: 5 })).map((r) => r.address), ['ok@x.test']);
      assert.deepEqual((await q.queue.recipients.claimDue(lease(T0 + 60_000, 'n1'))).map((r) => r.address).sort(), ['l@x.test', 'z@z.test']);
      assert.ok(later);
    }));

    test('on start a node releases its own leases only; expired leases of any node are released', () => withQueue(impl, async (q) => {
      await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }]));
      const b = await q.open();
      const [mine] = await q.queue.recipients.claimDue({ ...lease(T0, 'a', 1), leaseUntil: T0 + 100 });
      const [theirs] = await b.recipients.claimDue({ ...lease(T0, 'b', 1), leaseUntil: T0 + 500 });
      assert.equal(await q.queue.recipients.releaseNodeLeases('a', T0 + 1), 1);
      assert.deepEqual((await q.queue.recipients.claimDue({ ...lease(T0 + 1, 'a'), leaseUntil: T0 + 100 })).map((r) => r.id), [mine!.id], 'b\'s live lease is not taken');
      assert.equal(await b.recipients.releaseExpiredLeases(T0 + 99), 0);
      assert.equal(await b.recipients.releaseExpiredLeases(T0 + 100), 1, 'a\'s lease ran out');
      assert.equal(await q.queue.recipients.releaseExpiredLeases(T0 + 500), 1, 'b\'s lease ran out');
      assert.equal((await q.queue.recipients.claimDue(lease(T0 + 500, 'a'))).length, 2);
      assert.ok(theirs);
    }));

    test('renewLeases keeps what is still ours; unclaim gives rows back without an attempt', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }]));
      const [r1, r2] = await q.queue.recipients.claimDue({ ...lease(T0, 'a'), leaseUntil: T0 + 100 });
      assert.equal(await q.queue.recipients.releaseExpiredLeases(T0 + 100), 2);
      const [again] = await q.queue.recipients.claimDue({ ...lease(T0 + 100, 'b', 1) });
      assert.deepEqual(await q.queue.recipients.renewLeases([r1!.id, r2!.id], 'a', T0 + 1000), [], 'lost to a lease expiry');
      assert.deepEqual(await q.queue.recipients.renewLeases([again!.id], 'b', T0 + 1000), [again!.id]);
      assert.equal(await q.queue.recipients.unclaim([again!.id], 'a', T0 + 5000), 0, 'not a\'s to give back');
      assert.equal(await q.queue.recipients.unclaim([again!.id], 'b', T0 + 5000), 1);
      const row = (await q.queue.recipients.getRecipients(id)).find((r) => r.id === again!.id)!;
      assert.deepEqual([row.state, row.attempts, row.nextAttemptAt], ['queued', 0, T0 + 5000]);
      assert.deepEqual(await q.queue.recipients.getAttempts(id), [], 'no history for a claim given back');
    }));

    test('claims skip held messages, excluded destinations and destinations in backoff', () => withQueue(impl, async (q) => {
      const held = await q.queue.messages.enqueue(message([{ address: 'a@h.test', destination: 'h.test' }]));
      await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'a@y.test', destination: 'y.test' }, { address: 'a@z.test', destination: 'z.test' }]));
      await q.queue.recipients.setHeld(held, true);
      await q.queue.gate.putDestination({ key: 'y.test', health: 'backoff', backoffUntil: T0 + 1000, backoffMs: 1000, consecutiveFailures: 1, updatedAt: T0 });
      const claimed = await q.queue.recipients.claimDue({ ...lease(T0, 'a'), excludeDestinations: ['z.test'] });
      assert.deepEqual(claimed.map((r) => r.destination), ['x.test']);
      assert.deepEqual((await q.queue.recipients.claimDue(lease(T0 + 1000, 'a'))).map((r) => r.destination).sort(), ['y.test', 'z.test']);
    }));

    test('each owed report is claimed by one node; a claim that runs out can be taken; markDsn settles it', () => withQueue(impl, async (q) => {
      const id = await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }]));
      const claimed = await q.queue.recipients.claimDue(lease(T0, 'a'));
      await q.queue.recipients.recordOutcomes(claimed.map((r) => ({ recipientId: r.id, outcome: { kind: 'failed', reply: { code: 550, text: 'no' } } })), T0, 'a');
      const b = await q.open();
      const sweep = (now: number, owner: string) => ({ now, limit: 10, owner, leaseUntil: now + 1000 });
      const [x, y] = await Promise.all([q.queue.recipients.claimReportsDue(sweep(T0, 'a')), b.recipients.claimReportsDue(sweep(T0, 'b'))]);
      assert.equal(new Set([...x, ...y].map((r) => r.id)).size, 2, 'each recipient\'s report claimed by one node');
      assert.deepEqual(await b.recipients.claimReportsDue(sweep(T0 + 999, 'b')), [], 'still claimed');
      const retaken = await b.recipients.claimReportsDue(sweep(T0 + 1000, 'b'));
      assert.equal(retaken.length, 2, 'the claim ran out (its node died): another node sends the report');
      await b.recipients.markDsn(retaken.map((r) => r.id), 'final');
      assert.deepEqual(await q.queue.recipients.claimReportsDue(sweep(T0 + 5000, 'a')), []);
      assert.deepEqual(await q.queue.recipients.removeCompleted(10), [id]);
    }));

    test('a message finished by a node that died before removing it is removed by another node', () => withQueue(impl, async (q) => {
      const b = await q.open();
      assert.deepEqual(await b.recipients.removeCompleted(10), [], 'node b started: its first look finds nothing');
      const id = await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }]));
      const claimed = await q.queue.recipients.claimDue(lease(T0, 'a'));
      await q.queue.recipients.recordOutcomes(claimed.map((r) => ({ recipientId: r.id, outcome: { kind: 'delivered', reply } })), T0, 'a');
      // Node a dies here, before its removeCompleted: only b is left.
      assert.deepEqual(await b.recipients.removeCompleted(10), [], 'b has not touched it');
      q.clock.now = T0 + RESCAN_MS;
      const removed: string[] = [];
      for (let i = 0; i < 3 && removed.length === 0; i++) removed.push(...await b.recipients.removeCompleted(10));
      assert.deepEqual(removed, [id], 'b looks at every message again within RESCAN_MS');
      assert.deepEqual(await b.recipients.getRecipients(id), []);
    }));

    test('a message\'s owed reports are claimed whole, by one node, and not while one of its recipients is in an attempt', () => withQueue(impl, async (q) => {
      const failed = { kind: 'failed', reply: { code: 550, text: 'no' } } as const;
      const id = await q.queue.messages.enqueue(message([
        { address: 'a@x.test', destination: 'x.test' }, { address: 'b@y.test', destination: 'y.test' }, { address: 'c@x.test', destination: 'x.test' },
      ]));
      const b = await q.open();
      const sweep = (now: number, owner: string) => ({ now, limit: 100, owner, leaseUntil: now + 1000 });
      // Node a attempts the x.test recipients, node b the y.test one, at the same time.
      const onX = await q.queue.recipients.claimDue({ ...lease(T0, 'a'), excludeDestinations: ['y.test'] });
      const onY = await b.recipients.claimDue(lease(T0, 'b'));
      assert.deepEqual([onX.length, onY.length], [2, 1]);
      await q.queue.recipients.recordOutcomes(onX.map((r) => ({ recipientId: r.id, outcome: failed })), T0, 'a');
      assert.deepEqual(await q.queue.recipients.claimReportsDue(sweep(T0, 'a')), [], 'b@y.test is still in its attempt: its failure belongs in the same report');
      await b.recipients.recordOutcomes(onY.map((r) => ({ recipientId: r.id, outcome: failed })), T0 + 1, 'b');
      // Many messages, two nodes sweeping at once: each message's report goes whole to one of them.
      const more = await Promise.all(Array.from({ length: 20 }, () => q.queue.messages.enqueue(message(
        Array.from({ length: 5 }, (_, i) => ({ address: `r${i}@z.test`, destination: 'z.test' }))))));
      const rows = await q.queue.recipients.claimDue(lease(T0 + 2, 'a'));
      await q.queue.recipients.recordOutcomes(rows.map((r) => ({ recipientId: r.id, outcome: failed })), T0 + 2, 'a');
      const [x, y] = await Promise.all([q.queue.recipients.claimReportsDue(sweep(T0 + 3, 'a')), b.recipients.claimReportsDue(sweep(T0 + 3, 'b'))]);
      const owner = new Map<string, Set<string>>();
      for (const [who, claimed] of [['a', x], ['b', y]] as const) for (const r of claimed) owner.set(r.messageId, (owner.get(r.messageId) ?? new Set()).add(who));
      assert.deepEqual([...owner.values()].filter((o) => o.size > 1), [], 'no message\'s report split between two nodes');
      assert.equal(x.length + y.length, 3 + 20 * 5);
      assert.deepEqual([...x, ...y].filter((r) => r.messageId === id).map((r) => r.address).sort(), ['a@x.test', 'b@y.test', 'c@x.test']);
      assert.equal(new Set(more).size, 20);
    }));

    test('a message\'s delay warnings are claimed whole, by one node, and not while one of its recipients is in an attempt', () => withQueue(impl, async (q) => {
      const later = (rows: readonly { id: number }[], at: number, owner: string) => q.queue.recipients.recordOutcomes(rows.map((r) =>
        ({ recipientId: r.id, outcome: { kind: 'deferred', reply: { code: 451, text: 'later' }, nextAttemptAt: at + 60_000, countAttempt: true } })), at, owner);
      const old = { receivedAt: T0 - 10_000 };
      const id = await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@y.test', destination: 'y.test' }], old));
      const b = await q.open();
      const sweep = (now: number, owner: string, limit = 100) => ({ now, limit, owner, leaseUntil: now + 1000 });
      const onX = await q.queue.recipients.claimDue({ ...lease(T0, 'a'), excludeDestinations: ['y.test'] });
      const onY = await b.recipients.claimDue(lease(T0, 'b'));
      await later(onX, T0, 'a');
      assert.deepEqual(await q.queue.recipients.claimDelayed(T0, sweep(T0, 'a')), [], 'b@y.test is still in its attempt: its delay belongs in the same warning');
      await b.recipients.recordOutcomes(onY.map((r) => ({ recipientId: r.id, outcome: { kind: 'deferred', reply: { code: 451, text: 'later' }, nextAttemptAt: T0 + 60_000, countAttempt: true } })), T0 + 1, 'b');
      // Many messages of several recipients, two nodes sweeping with a small limit: each message's warning goes whole to one of them.
      await Promise.all(Array.from({ length: 20 }, () => q.queue.messages.enqueue(message(
        Array.from({ length: 5 }, (_, i) => ({ address: `r${i}@z.test`, destination: 'z.test' })), old))));
      await later(await q.queue.recipients.claimDue(lease(T0 + 2, 'a')), T0 + 2, 'a');
      const claimed: { who: string; messageId: string; id: number }[] = [];
      for (let round = 0; round < 30; round++) {
        const [x, y] = await Promise.all([q.queue.recipients.claimDelayed(T0, sweep(T0 + 3, 'a', 3)), b.recipients.claimDelayed(T0, sweep(T0 + 3, 'b', 3))]);
        if (x.length + y.length === 0) break;
        for (const [who, rows] of [['a', x], ['b', y]] as const) {
          assert.ok(new Set(rows.map((r) => r.messageId)).size <= 3, 'the limit counts messages');
          for (const r of rows) claimed.push({ who, messageId: r.messageId, id: r.id });
        }
      }
      const owner = new Map<string, Set<string>>();
      for (const c of claimed) owner.set(c.messageId, (owner.get(c.messageId) ?? new Set()).add(c.who));
      assert.deepEqual([...owner].filter(([, o]) => o.size > 1).map(([m]) => m), [], 'no message\'s delay warning split between two nodes');
      assert.equal(new Set(claimed.map((c) => c.id)).size, claimed.length, 'each recipient claimed once');
      assert.equal(claimed.length, 2 + 20 * 5);
      assert.equal(owner.size, 21);
      assert.equal(claimed.filter((c) => c.messageId === id).length, 2);
    }));

    test('expiry and delay warnings are claimed, each row by one node', () => withQueue(impl, async (q) => {
      await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }], { receivedAt: T0 - 10_000 }));
      const claimed = await q.queue.recipients.claimDue(lease(T0, 'a'));
      await q.queue.recipients.recordOutcomes(claimed.map((r) => ({ recipientId: r.id, outcome: { kind: 'deferred', reply: { code: 451, text: 'later' }, nextAttemptAt: T0 + 60_000, countAttempt: true } })), T0, 'a');
      const b = await q.open();
      const sweep = (now: number, owner: string) => ({ now, limit: 10, owner, leaseUntil: now + 1000 });
      const [d1, d2] = await Promise.all([q.queue.recipients.claimDelayed(T0, sweep(T0, 'a')), b.recipients.claimDelayed(T0, sweep(T0, 'b'))]);
      assert.equal(new Set([...d1, ...d2].map((r) => r.id)).size, 2, 'each warning claimed by one node');
      await q.queue.recipients.markDsn([...d1, ...d2].map((r) => r.id), 'delay');
      assert.deepEqual(await b.recipients.claimDelayed(T0, sweep(T0 + 5000, 'b')), [], 'warned once');
      const [e1, e2] = await Promise.all([q.queue.recipients.claimExpirable(T0, sweep(T0, 'a')), b.recipients.claimExpirable(T0, sweep(T0, 'b'))]);
      assert.equal(new Set([...e1, ...e2].map((r) => r.id)).size, 2, 'each expiry claimed by one node');
      const expire = (rows: readonly { id: number }[], owner: string) =>
        q.queue.recipients.recordOutcomes(rows.map((r) => ({ recipientId: r.id, outcome: { kind: 'expired', reply: { code: 451, text: 'expired' } } })), T0, owner);
      assert.equal((await expire(e1, 'a')).length + (await expire(e2, 'b')).length, 2);
      assert.deepEqual(await expire([...e1, ...e2], 'a'), [], 'final: a second expiry changes nothing');
      assert.equal((await b.recipients.counts()).byState.expired, 2);
    }));

    test('parkDestination moves waiting rows to the backoff end; flush brings deferred ones back; nextDueAt follows', () => withQueue(impl, async (q) => {
      await q.queue.messages.enqueue(message([{ address: 'a@x.test', destination: 'x.test' }, { address: 'b@x.test', destination: 'x.test' }, { address: 'c@y.test', destination: 'y.test' }]));
      assert.equal(await q.queue.recipients.parkDestination('x.test', T0 + 9000, 1), 1);
      assert.equal(await q.queue.recipients.parkDestination('x.test', T0 + 9000), 1);
      const claimed = await q.queue.recipients.claimDue(lease(T0 + 1, 'a'));
      assert.deepEqual(claimed.map((r) => r.address), ['c@y.test']);
      await q.queue.recipients.recordOutcomes([{ recipientId: claimed[0]!.id, outcome: { kind: 'deferred', reply, nextAttemptAt: T0 + 20_000, countAttempt: true } }], T0 + 1, 'a');
      assert.equal(await q.queue.recipients.nextDueAt(), T0 + 9000);
      assert.equal(await q.queue.recipients.flush({ domain: 'Y.test', now: T0 + 2 }), 1);
      assert.equal(await q.queue.recipients.nextDueAt(), T0 + 2);
    }));

    test('listMessages search: id, sender, Message-ID or a recipient containing the text in any case; LIKE wildcards taken literally', () => withQueue(impl, async (q) => {
      const a = await q.queue.messages.enqueue(message([{ address: 'Carol@Dest.test', destination: 'dest.test' }], { sender: 'alice@src.test', headerMessageId: '<Order-42.X@Shop.test>' }));
      const b = await q.queue.messages.enqueue(message([{ address: 'dave@other.test', destination: 'other.test' }, { address: 'x_y@other.test', destination: 'other.test' }], { sender: 'BOB@src.test' }));
      const c = await q.queue.messages.enqueue(message([{ address: 'erin@third.test', destination: 'third.test' }], { sender: '', headerMessageId: '<reply-7@mail.third.test>' }));
      const ids = async (text: string, more: object = {}) =>
        (await q.queue.recipients.listMessages({ search: { text }, ...more })).map((e) => e.message.id);
      assert.deepEqual(await ids('carol@dest'), [a]);
      assert.deepEqual(await ids('bob@'), [b]);
      assert.deepEqual(await ids('src.test'), [a, b]);
      assert.deepEqual(await ids(c.toLowerCase()), [c]);
      assert.deepEqual(await ids('x_y'), [b]);
      assert.deepEqual(await ids('d_ve'), [], '_ is not a wildcard');
      assert.deepEqual(await ids('%'), [], '% is not a wildcard');
      assert.deepEqual(await ids('order-42.x@shop'), [a], 'the Message-ID, any case');
      assert.deepEqual(await ids('<reply-7@'), [c]);
      assert.deepEqual(await ids('.test>'), [a, c], 'only messages with a Message-ID match one');
      assert.deepEqual(await ids('src.test', { limit: 1 }), [a]);
      assert.deepEqual(await ids('src.test', { domain: 'other.test' }), [b]);
    }));

    test('shapeCounts: waiting recipients by domain, destination, hold and the age bucket of their message; final ones left out', () => withQueue(impl, async (q) => {
      const min = 60_000;
      const at = (ageMin: number, recipients: { address: string; destination: string }[]) => q.queue.messages.enqueue(message(recipients, { receivedAt: T0 - ageMin * min }));
      const done = await at(2, [{ address: 'a@One.TEST', destination: 'route:one' }, { address: 'gone@x.test', destination: 'x.test' }]);
      await at(5, [{ address: 'edge@x.test', destination: 'x.test' }]); // exactly 5 minutes: the second bucket
      await at(7, [{ address: 'b@x.test', destination: 'x.test' }, { address: 'c@x.test', destination: 'x.test' }]);
      await at(2000, [{ address: 'old@x.test', destination: 'x.test' }]);
      await at(-1, [{ address: 'future@x.test', destination: 'x.test' }]); // a clock behind the arrival: the first bucket
      const held = await at(30, [{ address: 'h@x.test', destination: 'x.test' }]);
      await q.queue.recipients.setHeld(held, true);
      // gone@ delivered (final: not counted); a@ claimed (in flight: still waiting for an outcome, counted).
      const claimed = await q.queue.recipients.claimDue(lease(T0, 'a', 100));
      const gone = claimed.find((r) => r.address === 'gone@x.test')!;
      await q.queue.recipients.recordOutcomes([{ recipientId: gone.id, outcome: { kind: 'delivered', reply } }], T0, 'a');
      await q.queue.recipients.unclaim(claimed.filter((r) => r.messageId !== done).map((r) => r.id), 'a', T0);
      const counts = await q.queue.recipients.shapeCounts(T0, [5, 10, 20, 40].map((m) => m * min));
      const key = (c: { domain: string; destination: string; held: boolean; bucket: number }) => `${c.domain} ${c.destination} ${c.held} ${c.bucket}`;
      assert.deepEqual(counts.map((c) => [key(c), c.n]).sort(), [
        ['one.test route:one false 0', 1],
        ['x.test x.test false 0', 1],
        ['x.test x.test false 1', 3],
        ['x.test x.test false 4', 1],
        ['x.test x.test true 3', 1],
      ]);
      // No bounds: one bucket for every age.
      assert.deepEqual((await q.queue.recipients.shapeCounts(T0, [])).map((c) => [key(c), c.n]).sort(), [
        ['one.test route:one false 0', 1], ['x.test x.test false 0', 5], ['x.test x.test true 0', 1],
      ]);
    }));

    test('senderShapeCounts: messages with a waiting recipient by sender domain (after the last @, lower case), hold and age; the null sender is \'\'', () => withQueue(impl, async (q) => {
      const min = 60_000;
      const at = (ageMin: number, sender: string, addresses: string[]) =>
        q.queue.messages.enqueue(message(addresses.map((address) => ({ address, destination: 'x.test' })), { sender, receivedAt: T0 - ageMin * min }));
      await at(1, 'alice@Shop.TEST', ['a@x.test', 'b@x.test', 'c@x.test']); // three recipients, one message
      await at(2, 'bob@shop.test', ['d@x.test']);
      await at(7, '"odd@name"@Lists.Test', ['e@x.test']); // an @ in the quoted local part: the domain is after the last one
      await at(3, '', ['f@x.test']); // a DSN
      const held = await at(30, 'carol@shop.test', ['g@x.test']);
      await q.queue.recipients.setHeld(held, true);
      const done = await at(1, 'dan@gone.test', ['h@x.test']);
      // gone.test's only recipient is delivered: its message no longer counts.
      const claimed = await q.queue.recipients.claimDue(lease(T0, 'a', 100));
      const h = claimed.find((r) => r.messageId === done)!;
      await q.queue.recipients.recordOutcomes([{ recipientId: h.id, outcome: { kind: 'delivered', reply } }], T0, 'a');
      await q.queue.recipients.unclaim(claimed.filter((r) => r.messageId !== done).map((r) => r.id), 'a', T0);
      const counts = await q.queue.recipients.senderShapeCounts(T0, [5, 10, 20, 40].map((m) => m * min));
      assert.deepEqual(counts.map((c) => [`${c.senderDomain} ${c.held} ${c.bucket}`, c.n]).sort(), [
        [' false 0', 1],
        ['lists.test false 1', 1],
        ['shop.test false 0', 2],
        ['shop.test true 3', 1],
      ]);
    }));
  });
}

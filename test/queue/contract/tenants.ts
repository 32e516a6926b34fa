/**
 * The queue's tenant mechanisms (issue 25), for every implementation: a
 * tenant's weight is how many of its messages one turn of the fair claim
 * holds; which tenant goes first rotates; the claim leaves out excluded tenants (anywhere) and excluded
 * (route key, tenant) pairs while the others are claimed; each recipient
 * row carries its tenant; waiting recipients are counted per route key and
 * tenant; the gate lists rows by key prefix (a tenant's holds). The claim's
 * turns themselves are in recipient-queue's contract.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { message, T0, withQueue, type Implementation, type QueueUnderTest } from './harness.js';

const lease = (now: number, limit = 100) => ({ now, limit, owner: 'n1', leaseUntil: now + 60_000 });

/** `n` one-recipient messages of `tenant` to `dest`, addressed `<tenant><i>@<dest>`. */
async function send(q: QueueUnderTest, tenant: string, n: number, dest = 'x.test'): Promise<void> {
  for (let i = 0; i < n; i++) await q.queue.messages.enqueue(message([{ address: `${tenant}${i}@${dest}`, destination: dest }], tenant ? { tenant } : {}));
}

const tenantOf = (address: string): string => address.replace(/\d+@.*$/, '');

export function tenantsContract(impl: Implementation): void {
  describe(`Tenants in the queue: ${impl.name}`, { skip: impl.skip }, () => {
    test('a weight-3 tenant takes three messages per turn for each one of a weight-1 tenant', () => withQueue(impl, async (q) => {
      q.clock.now = T0;
      await send(q, 'a', 12);
      await send(q, 'b', 12);
      const rows = await q.queue.recipients.claimDue({ ...lease(T0 + 1), perDestination: 8, weights: { a: 3 } });
      assert.deepEqual(rows.map((r) => tenantOf(r.address)).join(''), 'aaabaaab');
      assert.deepEqual(rows.map((r) => r.tenant), rows.map((r) => tenantOf(r.address)), 'each row carries its tenant');
      // Weights of 1 (or none given) are the plain turns.
      const plain = await q.queue.recipients.claimDue({ ...lease(T0 + 1), perDestination: 4, weights: { a: 1 } });
      assert.deepEqual(plain.map((r) => tenantOf(r.address)).join(''), 'abab');
    }));

    test('rotation: which tenant goes first moves on, so tenants beyond a destination\'s share are not always left out', () => withQueue(impl, async (q) => {
      q.clock.now = T0;
      for (const t of ['a', 'b', 'c']) await send(q, t, 3);
      const claim = async (rotation: number) => {
        const rows = await q.queue.recipients.claimDue({ ...lease(T0 + 1), perDestination: 2, rotation });
        await q.queue.recipients.unclaim(rows.map((r) => r.id), 'n1', T0);
        return rows.map((r) => r.tenant).join('');
      };
      assert.deepEqual([await claim(0), await claim(1), await claim(2), await claim(3), await claim(7)], ['ab', 'ca', 'bc', 'ab', 'ca']);
    }));

    test('weights: a name with a quote is taken literally; a weight out of range is refused', () => withQueue(impl, async (q) => {
      q.clock.now = T0;
      await send(q, "o'k", 4);
      await send(q, 'z', 4);
      const rows = await q.queue.recipients.claimDue({ ...lease(T0 + 1), perDestination: 3, weights: { "o'k": 2 } });
      assert.deepEqual(rows.map((r) => r.tenant), ["o'k", "o'k", 'z']);
      await assert.rejects(q.queue.recipients.claimDue({ ...lease(T0 + 1), weights: { z: 0.5 } }), /weight/);
    }));

    test('excluded tenants and (route key, tenant) pairs are left waiting; the other tenants are claimed', () => withQueue(impl, async (q) => {
      q.clock.now = T0;
      await send(q, 'a', 2, 'x.test');
      await send(q, 'a', 2, 'y.test');
      await send(q, 'b', 2, 'x.test');
      await send(q, 'c', 2, 'y.test');
      await send(q, '', 1, 'x.test');
      const got = await q.queue.recipients.claimDue({ ...lease(T0 + 1), excludeTenants: ['b'], excludePairs: [{ destination: 'x.test', tenant: 'a' }] });
      assert.deepEqual(got.map((r) => r.address).sort(), ['0@x.test', 'a0@y.test', 'a1@y.test', 'c0@y.test', 'c1@y.test']);
      const rest = await q.queue.recipients.claimDue(lease(T0 + 1));
      assert.deepEqual(rest.map((r) => r.address).sort(), ['a0@x.test', 'a1@x.test', 'b0@x.test', 'b1@x.test']);
    }));

    test('tenantCounts: waiting recipients (in flight too) per route key and tenant; none for mail without a tenant or final', () => withQueue(impl, async (q) => {
      q.clock.now = T0;
      await send(q, 'a', 3, 'x.test');
      await send(q, 'b', 1, 'x.test');
      await send(q, 'a', 2, 'y.test');
      await send(q, '', 2, 'x.test');
      const [one] = await q.queue.recipients.claimDue({ ...lease(T0 + 1, 1), excludeTenants: ['', 'b'] });
      await q.queue.recipients.recordOutcomes([{ recipientId: one!.id, outcome: { kind: 'delivered', reply: { code: 250, text: 'ok' } } }], T0 + 1, 'n1');
      await q.queue.recipients.claimDue({ ...lease(T0 + 1, 1), excludeTenants: ['', 'b'] });
      assert.deepEqual(await q.queue.recipients.tenantCounts(), [
        { destination: 'x.test', tenant: 'a', queued: 2 }, { destination: 'x.test', tenant: 'b', queued: 1 }, { destination: 'y.test', tenant: 'a', queued: 2 },
      ]);
    }));

    test('listRows: the gate rows whose key starts with a prefix, in key order, from any node', () => withQueue(impl, async (q) => {
      const row = (key: string) => ({ key, health: 'suspended' as const, backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: T0 });
      await q.queue.gate.putDestination(row('tenant:b'));
      await q.queue.gate.putDestination(row('tenant:a@mx:x.test'));
      await q.queue.gate.putDestination(row('tenants.test'));
      await q.queue.gate.putLimits('tenant:a', { rules: [{ index: 0, action: 'suspend', rule: 'r', until: T0 + 60_000, since: T0, reply: '421 no' }] }, T0);
      const other = await q.open();
      const rows = await other.gate.listRows('tenant:');
      assert.deepEqual(rows.map((r) => r.key), ['tenant:a', 'tenant:a@mx:x.test', 'tenant:b']);
      assert.equal(rows[0]!.limits?.rules?.[0]?.until, T0 + 60_000);
      assert.deepEqual(await other.gate.listRows('nothing:'), []);
    }));
  });
}

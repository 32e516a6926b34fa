import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NEVER } from './destination-gate.js';
import type { DestinationRow } from './model.js';
import { weightSql } from './fair-claim.js';
import { claimExclusions, holdKey, holdOf, holdOver, manualHold, parseHoldKey, type TenantHold } from './tenant-holds.js';

const row = (over: Partial<DestinationRow> & { key: string }): DestinationRow =>
  ({ health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: 0, generation: 1, ...over });

describe('tenant holds', () => {
  test('a hold key names its scope (no space) and its tenant (spaces and @ allowed)', () => {
    assert.equal(holdKey('acme'), 'tenant:* acme');
    assert.deepEqual(parseHoldKey(holdKey('a b@c', 'mx:mx1.example,mx2.example')), { scope: 'mx:mx1.example,mx2.example', tenant: 'a b@c' });
    assert.equal(parseHoldKey('mx:x'), undefined);
    assert.equal(parseHoldKey('tenant:nospace'), undefined);
  });

  test('a row says: an administrator\'s suspension (until resumed or until T), a rule\'s in force, the longer of both; nothing once over', () => {
    const manual = row({ key: holdKey('acme'), limits: { rules: [manualHold(1_000, undefined, 'root')] } });
    assert.deepEqual(holdOf(manual, 2_000), { tenant: 'acme', scope: '*', until: NEVER, since: 1_000, why: 'suspended by root', manual: true });
    const timed = manualHold(1_000, 60_000, 'root');
    assert.equal(holdOf(row({ key: holdKey('acme', 'x.test'), limits: { rules: [timed] } }), 2_000)?.until, 61_000);
    assert.equal(holdOf(row({ key: holdKey('acme', 'x.test'), limits: { rules: [timed] } }), 61_000), undefined, 'over');
    const rule = { index: 2, action: 'suspend' as const, rule: 'rules[2] action=suspend_tenant', until: 90_000, since: 5_000, reply: '451 4.7.1 spam' };
    const ruled = row({ key: holdKey('acme', 'mx:x'), limits: { rules: [rule] } });
    assert.deepEqual(holdOf(ruled, 6_000), { tenant: 'acme', scope: 'mx:x', until: 90_000, since: 5_000, why: 'rules[2] action=suspend_tenant after 451 4.7.1 spam', manual: false });
    assert.equal(holdOf(ruled, 90_000), undefined);
    assert.equal(holdOf(row({ key: holdKey('acme', 'mx:x'), limits: { rules: [timed, rule] } }), 2_000)?.until, 90_000, 'the rule outlasts the manual hold');
    assert.equal(holdOf(row({ key: 'mx:x', limits: { rules: [rule] } }), 6_000), undefined, 'a destination row is not a hold');
  });

  test('the hold over a delivery: any of its scopes or everywhere, the longest; never for mail without a tenant', () => {
    const h = (tenant: string, scope: string, until: number): TenantHold => ({ tenant, scope, until, since: 0, why: 'w', manual: false });
    const holds = [h('a', 'mx:x', 50), h('a', 'provider:google', 80), h('b', '*', 70), h('a', 'mx:y', 99)];
    assert.equal(holdOver(holds, 'a', ['x.test', 'mx:x', 'mx:x'], 10)?.until, 50);
    assert.equal(holdOver(holds, 'a', ['g.test', 'mx:g', 'provider:google'], 10)?.until, 80);
    assert.equal(holdOver(holds, 'a', ['z.test', 'mx:z', 'mx:z'], 10), undefined);
    assert.equal(holdOver(holds, 'b', ['z.test', 'mx:z', 'mx:z'], 10)?.until, 70);
    assert.equal(holdOver(holds, 'a', ['x.test', 'mx:x', 'mx:x'], 50), undefined, 'ended');
    assert.equal(holdOver([h('', '*', 99)], '', ['x.test'], 0), undefined);
  });

  test('the claim leaves out tenants held everywhere and the (route key, tenant) pairs in a held scope', () => {
    const h = (tenant: string, scope: string): TenantHold => ({ tenant, scope, until: 100, since: 0, why: 'w', manual: false });
    const scopes: Record<string, string[]> = { 'a.test': ['mx:m', 'provider:p'], 'b.test': ['mx:m', 'provider:p'], 'c.test': ['mx:n', 'mx:n'] };
    const out = claimExclusions([h('t1', '*'), h('t2', 'mx:m'), h('t3', 'provider:p'), h('t4', 'c.test')], Object.keys(scopes), (k) => scopes[k] ?? [], 10);
    assert.deepEqual(out.tenants, ['t1']);
    assert.deepEqual(out.pairs, [
      { destination: 'a.test', tenant: 't2' }, { destination: 'a.test', tenant: 't3' },
      { destination: 'b.test', tenant: 't2' }, { destination: 'b.test', tenant: 't3' }, { destination: 'c.test', tenant: 't4' },
    ]);
    assert.deepEqual(claimExclusions([h('t1', '*')], ['a.test'], () => [], 100), { tenants: [], pairs: [] }, 'ended holds exclude nothing');
  });

  test('weights become a CASE on the tenant: names quoted, weight 1 left out, out-of-range refused', () => {
    assert.equal(weightSql(new Map()), '1');
    assert.equal(weightSql(new Map([['one', 1]])), '1');
    assert.equal(weightSql(new Map([["o'k", 2], ['a', 3]])), "CASE t.tenant WHEN 'a' THEN 3 WHEN 'o''k' THEN 2 ELSE 1 END");
    assert.throws(() => weightSql(new Map([['a', 0]])), RangeError);
    assert.throws(() => weightSql(new Map([['a', 1.5]])), RangeError);
  });
});

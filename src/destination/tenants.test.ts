import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { parseConfig } from '../config/load.js';
import { mergeLimits, takeFromBucket, type Bucket, type DestinationGate } from '../queue/destination-gate.js';
import type { DestinationLimits, DestinationRow } from '../queue/model.js';
import { compileRules } from './reply-rules.js';
import { HOLD_REFRESH_MS, Tenants } from './tenants.js';

/** The gate calls Tenants makes, in memory, with the queue's own pure merge and bucket (one "database" for several nodes). */
class MemoryGate implements Pick<DestinationGate, 'takeToken' | 'listRows' | 'putLimits'> {
  readonly rows = new Map<string, DestinationRow>();
  readonly buckets = new Map<string, Bucket>();
  reads = 0;
  async takeToken(key: string, now: number, rate: { readonly count: number; readonly perMs: number }) {
    const { bucket, result } = takeFromBucket(this.buckets.get(key), now, rate);
    this.buckets.set(key, bucket);
    return result;
  }
  async listRows(prefix: string) {
    this.reads++;
    return [...this.rows.values()].filter((r) => r.key.startsWith(prefix));
  }
  async putLimits(key: string, limits: DestinationLimits, now: number) {
    const merged = mergeLimits(this.rows.get(key)?.limits, limits, now);
    this.rows.set(key, { key, health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: now, generation: 0, ...(merged ? { limits: merged } : {}) });
  }
}

const config = parseConfig({
  tenants: { acme: { rate: '2/min' }, big: { weight: 3 } },
  delivery: { rules: [{ match: 'unsolicited', action: 'suspend_tenant', for: '1h' }] },
});
const rule = compileRules(config.delivery.rules)[0]!;
const reply = { code: 451, enhanced: '4.7.1', text: 'Unsolicited mail' };

function node(gate: MemoryGate, clock: { now: number }) {
  return new Tenants({
    gate, config: () => config, log: pino({ level: 'silent' }), clock: () => clock.now,
    known: () => [['x.test', 'mx:x'], ['y.test', 'mx:y']], scopeOf: (d) => (d === 'mx:x' ? 'provider:p' : d),
  });
}

describe('destination/tenants', () => {
  test('a suspend_tenant trigger holds that tenant at once on this node, at the rule\'s scope only; other nodes see it once written', async () => {
    const gate = new MemoryGate();
    const clock = { now: 1_000_000 };
    const a = node(gate, clock);
    const b = node(gate, clock);
    a.ruleTriggered('spammy', 'provider:p', rule, reply, clock.now);
    assert.equal((await a.mayGo('spammy', 'x.test', 'mx:x', clock.now))?.reason, 'held', 'x.test is of provider p');
    assert.equal(await a.mayGo('spammy', 'y.test', 'mx:y', clock.now), undefined, 'another destination');
    assert.equal(await a.mayGo('good', 'x.test', 'mx:x', clock.now), undefined, 'another tenant');
    // A read of the gate before the trigger is written keeps it here.
    clock.now += HOLD_REFRESH_MS;
    await a.refresh(clock.now, true);
    assert.equal((await a.mayGo('spammy', 'x.test', 'mx:x', clock.now))?.reason, 'held');
    const pairs = a.claimFilter(clock.now).excludePairs;
    assert.ok(pairs.some((p) => p.destination === 'x.test' && p.tenant === 'spammy') && !pairs.some((p) => p.destination === 'y.test'), JSON.stringify(pairs));
    await a.share();
    await b.refresh(clock.now, true);
    const held = await b.mayGo('spammy', 'x.test', 'mx:x', clock.now);
    assert.equal(held?.reason === 'held' ? held.hold.until : undefined, 1_000_000 + 3_600_000);
    assert.match(held?.reason === 'held' ? held.hold.why : '', /suspend_tenant.*after 451 4\.7\.1 Unsolicited mail/);
    clock.now = 1_000_000 + 3_600_000;
    assert.equal(await b.mayGo('spammy', 'x.test', 'mx:x', clock.now), undefined, 'over after `for`');
  });

  test('over its rate a tenant waits until the next token and this node\'s claims leave it out till then; others are not limited', async () => {
    const gate = new MemoryGate();
    const clock = { now: 5_000_000 };
    const t = node(gate, clock);
    assert.equal(await t.mayGo('acme', 'x.test', 'mx:x', clock.now), undefined);
    assert.equal(await t.mayGo('acme', 'y.test', 'mx:y', clock.now), undefined, 'the rate is over every destination');
    const wait = await t.mayGo('acme', 'x.test', 'mx:x', clock.now);
    assert.deepEqual(wait, { reason: 'rate', until: clock.now + 30_000 });
    assert.equal(await t.mayGo('other', 'x.test', 'mx:x', clock.now), undefined);
    assert.deepEqual(t.claimFilter(clock.now).excludeTenants, ['acme']);
    assert.equal(node(gate, clock).claimFilter(clock.now).excludeTenants.length, 0, 'another node learns it from its own take');
    assert.equal((await node(gate, clock).mayGo('acme', 'x.test', 'mx:x', clock.now))?.reason, 'rate', 'one bucket for every node');
    clock.now += 30_000;
    assert.deepEqual(t.claimFilter(clock.now).excludeTenants, []);
    assert.equal(await t.mayGo('acme', 'x.test', 'mx:x', clock.now), undefined);
  });

  test('mail without a tenant is never held nor limited, and asks nothing of the gate; weights and rotation go to the claim', async () => {
    const gate = new MemoryGate();
    const t = node(gate, { now: 0 });
    assert.equal(await t.mayGo(undefined, 'x.test', 'mx:x', 0), undefined);
    assert.equal(gate.reads, 0);
    t.ruleTriggered(undefined, 'mx:x', rule, reply, 0);
    assert.equal(gate.rows.size + (await t.share(), gate.rows.size), 0, 'nothing suspended');
    const f = t.claimFilter(0);
    assert.deepEqual(f.weights, { big: 3 });
    assert.notEqual(t.claimFilter(0).rotation, f.rotation, 'moves on per claim');
  });
});

/**
 * Tests for the pure politeness controllers: adaptive concurrency
 * (destination/concurrency), learned recipient limits (destination/learned-limits),
 * destination keys by MX host set (destination/key and
 * destination/map, with a fake resolver and clock) and the
 * Politeness registry that combines them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load.js';
import { mxDestinationKey, isDomainKey } from './key.js';
import type { MxHostSet } from '../delivery/resolve.js';
import { concurrencyLimit, initialConcurrency, onSessionSuccess, onSessionTimeout, onTooManyConnections } from './concurrency.js';
import { DestinationMap, NEGATIVE_TTL_MS } from './map.js';
import { learnRecipientLimit, recipientLimit } from './learned-limits.js';
import { Politeness } from './politeness.js';

const HOUR = 3_600_000;

describe('adaptive concurrency', () => {
  test('starts at the initial value, never above the cap', () => {
    assert.equal(concurrencyLimit(initialConcurrency(5, 10), 10, 0), 5);
    assert.equal(concurrencyLimit(initialConcurrency(5, 2), 2, 0), 2);
  });
  test('grows by one per window of `limit` successes, up to the cap', () => {
    let s = initialConcurrency(2, 4);
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) { s = onSessionSuccess(s, 4, 0); seen.push(concurrencyLimit(s, 4, 0)); }
    assert.deepEqual(seen, [2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4]);
  });
  test('"too many connections" with 3 others working: down to 3, and it does not grow back while the ceiling lasts', () => {
    let s = onTooManyConnections(initialConcurrency(5, 10), 3, 0, HOUR, '421 4.7.0 Too many connections');
    assert.equal(concurrencyLimit(s, 10, 0), 3);
    for (let i = 0; i < 50; i++) s = onSessionSuccess(s, 10, 1000);
    assert.equal(concurrencyLimit(s, 10, 1000), 3);
    // After the ceiling expires, growth resumes.
    for (let i = 0; i < 10; i++) s = onSessionSuccess(s, 10, 2 * HOUR);
    assert.ok(concurrencyLimit(s, 10, 2 * HOUR) > 3);
  });
  test('never below 1; a timeout lowers by one without a ceiling', () => {
    assert.equal(concurrencyLimit(onTooManyConnections(initialConcurrency(1, 10), 0, 0, HOUR, 'x'), 10, 0), 1);
    const t = onSessionTimeout(initialConcurrency(5, 10));
    assert.equal(concurrencyLimit(t, 10, 0), 4);
    assert.equal(t.ceiling, undefined);
    assert.equal(concurrencyLimit(onSessionTimeout(initialConcurrency(1, 10)), 10, 0), 1);
  });
});

describe('learned recipient limits (I6)', () => {
  test('learned after K accepted; later transactions carry at most K until it expires', () => {
    const l = learnRecipientLimit(undefined, 3, '452 4.5.3 Too many recipients', 0, HOUR);
    assert.equal(recipientLimit(l, 100, 1), 3);
    assert.equal(recipientLimit(l, 2, 1), 2);
    assert.equal(recipientLimit(l, 100, HOUR), 100);
  });
  test('a lower K replaces a higher; a higher one does not raise it; A = 0 teaches nothing', () => {
    let l = learnRecipientLimit(undefined, 10, 'x', 0, HOUR);
    l = learnRecipientLimit(l, 4, 'y', 1, HOUR);
    assert.equal(recipientLimit(l, 100, 2), 4);
    l = learnRecipientLimit(l, 8, 'z', 2, HOUR);
    assert.equal(recipientLimit(l, 100, 3), 4);
    assert.equal(learnRecipientLimit(undefined, 0, 'x', 0, HOUR), undefined);
  });
});

describe('destination keys by MX host set', () => {
  test('sorted, lowercased, de-duplicated, readable', () => {
    assert.equal(mxDestinationKey(['ALT1.ASPMX.L.GOOGLE.COM.', 'aspmx.l.google.com', 'aspmx.l.google.com']), 'mx:alt1.aspmx.l.google.com,aspmx.l.google.com');
    assert.throws(() => mxDestinationKey([]));
  });
  test('only plain domains are mapped', () => {
    assert.ok(isDomainKey('example.test'));
    for (const k of ['route:127.0.0.1:25', 'local:example.test', 'mx:a.test', '[192.0.2.1]']) assert.ok(!isDomainKey(k), k);
  });

  const fakeDns = (answers: Record<string, MxHostSet>) => {
    const asked: string[] = [];
    return { asked, mxHostSet: async (d: string) => { asked.push(d); return answers[d] ?? { kind: 'none', why: 'nxdomain' }; } };
  };

  test('domains with equal MX sets share one key; one question per domain per TTL', async () => {
    let now = 0;
    const dns = fakeDns({
      'a.test': { kind: 'hosts', hosts: ['mx2.host.test', 'mx1.host.test'] },
      'b.test': { kind: 'hosts', hosts: ['MX1.host.test', 'mx2.host.test'] },
      'c.test': { kind: 'hosts', hosts: ['mx.other.test'] },
    });
    const map = new DestinationMap({ mxHostSet: dns.mxHostSet, clock: () => now, settings: () => ({ by: 'mx', ttlMs: HOUR }) });
    const keys = await map.keysFor(['a.test', 'b.test', 'c.test', 'a.test', 'route:x:25', 'local:l.test']);
    assert.equal(keys.get('a.test'), 'mx:mx1.host.test,mx2.host.test');
    assert.equal(keys.get('b.test'), keys.get('a.test'));
    assert.equal(keys.get('c.test'), 'mx:mx.other.test');
    assert.equal(keys.get('route:x:25'), 'route:x:25');
    assert.equal(keys.get('local:l.test'), 'local:l.test');
    assert.deepEqual(map.domainsOf('mx:mx1.host.test,mx2.host.test'), ['a.test', 'b.test']);
    await map.keysFor(['a.test', 'b.test']);
    assert.equal(dns.asked.length, 3);
    now = HOUR;
    await map.keysFor(['a.test']);
    assert.equal(dns.asked.length, 4);
  });

  test('no host set: the domain stays its own destination for a short while', async () => {
    let now = 0;
    const dns = fakeDns({ 'tmp.test': { kind: 'none', why: 'temporary' } });
    const map = new DestinationMap({ mxHostSet: dns.mxHostSet, clock: () => now, settings: () => ({ by: 'mx', ttlMs: HOUR }) });
    assert.equal(await map.keyFor('tmp.test'), 'tmp.test');
    await map.keyFor('tmp.test');
    assert.equal(dns.asked.length, 1);
    now = NEGATIVE_TTL_MS;
    await map.keyFor('tmp.test');
    assert.equal(dns.asked.length, 2);
  });

  test('destination_by = "domain": no DNS, the domain is the key', async () => {
    const dns = fakeDns({});
    const map = new DestinationMap({ mxHostSet: dns.mxHostSet, clock: () => 0, settings: () => ({ by: 'domain', ttlMs: HOUR }) });
    assert.equal(await map.keyFor('a.test'), 'a.test');
    assert.equal(dns.asked.length, 0);
  });

  test('concurrent lookups of one domain ask once', async () => {
    const dns = fakeDns({ 'a.test': { kind: 'hosts', hosts: ['mx.test'] } });
    const map = new DestinationMap({ mxHostSet: dns.mxHostSet, clock: () => 0, settings: () => ({ by: 'mx', ttlMs: HOUR }) });
    await Promise.all([map.keyFor('a.test'), map.keyFor('a.test'), map.keyFor('a.test')]);
    assert.equal(dns.asked.length, 1);
  });
});

describe('Politeness registry', () => {
  test('combines adaptive limit, learned limits and rules; the view shows them', () => {
    let now = 0;
    const cfg = parseConfig({ delivery: { max_connections_per_destination: 10, initial_connections_per_destination: 5, rules: [{ match: 'slow down', action: 'set', max_connections: 2, for: '1h' }, { match: 'go away', action: 'suspend', for: '10m' }] } });
    const p = new Politeness(() => cfg, () => now);
    const K = 'mx:mx.test';
    assert.equal(p.connectionLimit(K), 5);
    assert.equal(p.recipientLimit(K), 100);
    assert.equal(p.limitReached(K, 3, { code: 452, enhanced: '4.5.3', text: 'Too many recipients' }), 3);
    assert.equal(p.recipientLimit(K), 3);
    assert.equal(p.tooManyConnections(K, 3, { code: 421, enhanced: '4.7.0', text: 'Too many connections' }), 3);
    assert.equal(p.onReply(K, { code: 451, text: 'please slow down' })?.rule.action, 'set');
    assert.equal(p.connectionLimit(K), 2);
    assert.equal(p.onReply(K, { code: 451, text: 'nothing' }), undefined);
    assert.equal(p.suspendedUntil(K), undefined);
    p.onReply(K, { code: 421, text: 'go away' });
    assert.equal(p.suspendedUntil(K), 600_000);
    const v = p.view(K);
    assert.equal(v.learnedRecipients?.max, 3);
    assert.equal(v.learnedConnections?.max, 3);
    assert.deepEqual(v.rules.map((r) => [r.action, r.reply]), [['set', '451 please slow down'], ['suspend', '421 go away']]);
    now = 2 * 86_400_000;
    assert.equal(p.connectionLimit(K), 3);
    assert.equal(p.recipientLimit(K), 100);
    assert.deepEqual(p.view(K).rules, []);
  });
});

describe('Politeness: shared with other nodes through the gate row', () => {
  test('shared() carries the learned ceilings; absorb() takes the stricter on a fresh node', () => {
    let now = 0;
    const cfg = parseConfig({});
    const a = new Politeness(() => cfg, () => now);
    const b = new Politeness(() => cfg, () => now);
    const K = 'mx:mx.test';
    assert.equal(a.shared(K), undefined);
    a.limitReached(K, 3, { code: 452, enhanced: '4.5.3', text: 'Too many recipients' });
    a.tooManyConnections(K, 2, { code: 421, enhanced: '4.7.0', text: 'Too many connections' });
    const shared = a.shared(K);
    assert.deepEqual({ ...shared }, {
      maxConnections: 2, maxConnectionsUntil: 86_400_000, connectionsReply: '421 4.7.0 Too many connections',
      maxRecipients: 3, maxRecipientsUntil: 86_400_000, recipientsReply: '452 4.5.3 Too many recipients',
    });
    now = 1000;
    b.absorb(K, shared);
    assert.equal(b.recipientLimit(K), 3);
    assert.equal(b.connectionLimit(K), 2);
    // A laxer row does not loosen what is known here; an expired one says nothing.
    b.absorb(K, { maxRecipients: 10, maxRecipientsUntil: 5 * 86_400_000 });
    assert.equal(b.recipientLimit(K), 3);
    const c = new Politeness(() => cfg, () => now);
    c.absorb(K, { maxRecipients: 2, maxRecipientsUntil: 500 });
    assert.equal(c.recipientLimit(K), 100);
  });

  test('rules in force travel too: a suspend and a set rule seen on one node hold on another until they end', () => {
    let now = 0;
    const cfg = parseConfig({ delivery: { rules: [{ match: 'slow down', action: 'set', max_connections: 2, for: '1h' }, { match: 'go away', action: 'suspend', for: '10m' }] } });
    const a = new Politeness(() => cfg, () => now);
    const b = new Politeness(() => cfg, () => now);
    const K = 'mx:mx.test';
    a.onReply(K, { code: 451, text: 'please slow down' });
    a.onReply(K, { code: 421, text: 'go away' });
    const shared = a.shared(K);
    assert.deepEqual(shared?.rules?.map((r) => [r.action, r.until, r.reply]), [['set', 3_600_000, '451 please slow down'], ['suspend', 600_000, '421 go away']]);
    now = 1000;
    b.absorb(K, shared);
    assert.equal(b.suspendedUntil(K), 600_000);
    assert.equal(b.connectionLimit(K), 2);
    assert.deepEqual(b.view(K).rules.map((r) => r.reply), ['451 please slow down', '421 go away']);
    now = 600_000;
    assert.equal(b.suspendedUntil(K), undefined);
    now = 3_600_000;
    assert.equal(b.connectionLimit(K), 5);
    assert.equal(a.shared(K), undefined);
  });
});

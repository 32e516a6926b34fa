/**
 * Unit tests of destination/sources: smooth weighted round robin (its
 * sequence, its proportions over many choices, a blocked source sitting out,
 * every source blocked → the earliest time one is free), and which pool a
 * message takes (route, tenant, default, none for local mail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../config/load.js';
import { SourcePools, smoothWeightedChoice } from './sources.js';

test('smooth weighted round robin: 3:1 gives a a b a, deterministic, spread out', () => {
  const members = [{ source: 'a', weight: 3 }, { source: 'b', weight: 1 }];
  const current = new Map<string, number>();
  const seq = Array.from({ length: 8 }, () => smoothWeightedChoice(members, current, () => false));
  assert.deepEqual(seq, ['a', 'a', 'b', 'a', 'a', 'a', 'b', 'a']);
});

test('smooth weighted round robin: over 1000 choices each weight gets its share to within one', () => {
  const members = [{ source: 'a', weight: 5 }, { source: 'b', weight: 3 }, { source: 'c', weight: 2 }];
  const current = new Map<string, number>();
  const counts = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const s = smoothWeightedChoice(members, current, () => false)!;
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { a: 500, b: 300, c: 200 });
});

test('a blocked source sits its turn out; the others share its mail; all blocked → none', () => {
  const members = [{ source: 'a', weight: 3 }, { source: 'b', weight: 1 }];
  const current = new Map<string, number>();
  assert.deepEqual(Array.from({ length: 4 }, () => smoothWeightedChoice(members, current, (s) => s === 'a')), ['b', 'b', 'b', 'b']);
  assert.equal(smoothWeightedChoice(members, current, () => true), undefined);
});

const cfg = parseConfig({
  egress: {
    sources: [{ name: 'a', address: '127.0.0.2' }, { name: 'b', address: '127.0.0.3' }],
    pools: [{ name: 'one', sources: [{ source: 'a' }] }, { name: 'two', sources: [{ source: 'a', weight: 3 }, { source: 'b', weight: 1 }] }],
    default_pool: 'two', tenant_pools: { acme: 'one' },
  },
  routes: { 'routed.test': { hosts: ['127.0.0.1:25'], pool: 'one' }, 'plain.test': '127.0.0.1:26', 'lmtp.test': { protocol: 'lmtp', socket: '/run/lmtp' } },
});

test('the pool: the route\'s, else the tenant\'s, else the default; none for local or socket mail', () => {
  const pools = new SourcePools(() => cfg);
  assert.equal(pools.poolOf('routed.test', 'other', 'route:127.0.0.1:25'), 'one');
  assert.equal(pools.poolOf('example.test', 'acme', 'mx:mx.example.test'), 'one');
  assert.equal(pools.poolOf('example.test', 'other', 'mx:mx.example.test'), 'two');
  assert.equal(pools.poolOf('plain.test', undefined, 'route:127.0.0.1:26'), 'two');
  assert.equal(pools.poolOf('localhost', undefined, 'local:localhost'), undefined);
  assert.equal(pools.poolOf('lmtp.test', undefined, 'route:lmtp:unix:/run/lmtp'), undefined);
  assert.equal(new SourcePools(() => parseConfig({})).poolOf('example.test', 'acme', 'mx:mx.example.test'), undefined);
});

test('choose: per destination; every source blocked → the earliest end', () => {
  const pools = new SourcePools(() => cfg);
  const now = 1000;
  assert.deepEqual([0, 1, 2, 3].map(() => pools.choose('two', 'mx:x', now, () => undefined)), [{ source: 'a' }, { source: 'a' }, { source: 'b' }, { source: 'a' }]);
  // Another destination has its own turns.
  assert.deepEqual(pools.choose('two', 'mx:y', now, () => undefined), { source: 'a' });
  assert.deepEqual(pools.choose('two', 'mx:x', now, (s) => (s === 'a' ? 5000 : 3000)), { until: 3000 });
  assert.deepEqual(pools.choose('two', 'mx:x', now, (s) => (s === 'a' ? 5000 : undefined)), { source: 'b' });
});

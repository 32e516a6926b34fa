/**
 * Unit tests of `[egress]`'s validation (config/schema): sources, pools,
 * tenant and route pools — each mistake a clear error at its key path; no
 * `[egress]` at all is valid and configures no source.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from './load.js';

const SOURCES = [{ name: 'a', address: '127.0.0.2', ehlo_name: 'a.example.test' }, { name: 'b', address: '127.0.0.3' }];
const POOLS = [{ name: 'main', sources: [{ source: 'a', weight: 3 }, { source: 'b' }] }];

/** The problems parseConfig reports for `raw`, as "path: message". */
function problems(raw: Record<string, unknown>): string[] {
  try {
    parseConfig(raw);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

test('egress: none configured is valid and has no source (exactly the behaviour without it)', () => {
  const cfg = parseConfig({});
  assert.deepEqual(cfg.egress, { sources: [], pools: [], tenant_pools: {} });
});

test('egress: sources and a weighted pool parse; weight defaults to 1, warmup to none', () => {
  const cfg = parseConfig({ egress: { sources: SOURCES, pools: POOLS, tenant_pools: { acme: 'main' } }, routes: { 'x.test': { hosts: ['127.0.0.1:25'], pool: 'main' } } });
  assert.deepEqual(cfg.egress.pools[0]?.sources, [{ source: 'a', weight: 3 }, { source: 'b', weight: 1 }]);
  assert.deepEqual(cfg.egress.sources[1]?.warmup, []);
});

test('egress: an unknown source in a pool, a source listed twice, duplicate names', () => {
  assert.deepEqual(problems({ egress: { sources: SOURCES, pools: [{ name: 'p', sources: [{ source: 'c' }] }] } }),
    ['egress.pools.0.sources.0.source: pool "p" names an unknown source "c"']);
  assert.deepEqual(problems({ egress: { sources: SOURCES, pools: [{ name: 'p', sources: [{ source: 'a' }, { source: 'a', weight: 2 }] }] } }),
    ['egress.pools.0.sources: pool "p" lists source "a" twice']);
  assert.deepEqual(problems({ egress: { sources: [...SOURCES, { name: 'a', address: '127.0.0.4' }], pools: POOLS } }),
    ['egress.sources: two sources are named "a"']);
  assert.deepEqual(problems({ egress: { sources: SOURCES, pools: [...POOLS, { name: 'main', sources: [{ source: 'b' }] }] } }),
    ['egress.pools: two pools are named "main"']);
});

test('egress: sources without a pool, pools without sources, unknown default or tenant pool', () => {
  assert.deepEqual(problems({ egress: { sources: SOURCES } }), ['egress.pools: sources need at least one [[egress.pools]] entry to be used']);
  assert.ok(problems({ egress: { pools: POOLS } }).includes('egress.sources: pools need [[egress.sources]]'));
  assert.deepEqual(problems({ egress: { sources: SOURCES, pools: POOLS, default_pool: 'nope' } }), ['egress.default_pool: unknown pool "nope"']);
  assert.deepEqual(problems({ egress: { sources: SOURCES, pools: POOLS, tenant_pools: { acme: 'nope' } } }),
    ['egress.tenant_pools.acme: tenant "acme" names an unknown pool "nope"']);
});

test('egress: bad address, name, EHLO name, weight and warm-up step are refused where they are', () => {
  const got = problems({
    egress: {
      sources: [{ name: 'a b', address: '127.0.0.300', ehlo_name: 'bad name', warmup: ['50/day', '10/week', '0/day'] }],
      pools: [{ name: 'p', sources: [{ source: 'a b', weight: 0 }] }],
    },
  });
  for (const path of ['egress.sources.0.name', 'egress.sources.0.address', 'egress.sources.0.ehlo_name', 'egress.sources.0.warmup.1', 'egress.sources.0.warmup.2', 'egress.pools.0.sources.0.weight']) {
    assert.ok(got.some((p) => p.startsWith(`${path}:`)), `${path} in ${got.join(' | ')}`);
  }
  assert.ok(!got.some((p) => p.startsWith('egress.sources.0.warmup.0')), '"50/day" is a daily cap');
});

test('egress: a route naming an unknown pool, or a socket route naming one', () => {
  assert.deepEqual(problems({ egress: { sources: SOURCES, pools: POOLS }, routes: { 'x.test': { hosts: ['127.0.0.1:25'], pool: 'nope' } } }),
    ['routes.x.test.pool: route "x.test" names an unknown pool "nope"']);
  assert.deepEqual(problems({ egress: { sources: SOURCES, pools: POOLS }, routes: { 'x.test': { protocol: 'lmtp', socket: '/run/lmtp', pool: 'main' } } }),
    ['routes.x.test.pool: a socket route has no source address: pool is for routes with hosts']);
});

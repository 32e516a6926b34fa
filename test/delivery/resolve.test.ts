/**
 * Integration tests for delivery/resolve: next-hop resolution through node's
 * real DNS client (c-ares) against a real DNS server on 127.0.0.1
 * (test/support/dns-server). Covers MX order and shuffling, null MX, implicit
 * MX, NXDOMAIN, SERVFAIL/timeouts, address literals, routes and the MX cap.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createResolver, orderMx, type NextHop, type Resolution, type ResolveOptions } from '../../src/delivery/resolve.js';
import { destinationKey, routeFor } from '../../src/delivery/route.js';
import { startDnsServer, type TestDnsServer, type Zone } from '../support/dns-server.js';

const ZONE: Zone = {
  'multi.test': { MX: [{ preference: 20, exchange: 'mx2.multi.test' }, { preference: 10, exchange: 'mx1.multi.test' }] },
  'mx1.multi.test': { A: ['127.0.0.1'] },
  'mx2.multi.test': { A: ['127.0.0.2'], AAAA: ['::1'] },
  'eq.test': {
    MX: [
      { preference: 5, exchange: 'first.eq.test' },
      { preference: 10, exchange: 'a.eq.test' },
      { preference: 10, exchange: 'b.eq.test' },
      { preference: 10, exchange: 'c.eq.test' },
    ],
  },
  'first.eq.test': { A: ['127.0.1.0'] },
  'a.eq.test': { A: ['127.0.1.1'] },
  'b.eq.test': { A: ['127.0.1.2'] },
  'c.eq.test': { A: ['127.0.1.3'] },
  'nullmx.test': { MX: [{ preference: 0, exchange: '.' }], A: ['127.0.0.1'] },
  'nomx.test': { A: ['127.0.0.5'], AAAA: ['::1'] },
  'empty.test': { TXT: ['v=spf1 -all'] },
  'nx.test': 'NXDOMAIN',
  'broken.test': 'SERVFAIL',
  'refused.test': 'REFUSED',
  'slow.test': 'TIMEOUT',
  'dangling.test': { MX: [{ preference: 10, exchange: 'gone.test' }] },
  'partial.test': { MX: [{ preference: 10, exchange: 'gone.test' }, { preference: 20, exchange: 'mx1.multi.test' }] },
  'many.test': {
    MX: [1, 2, 3, 4].map((i) => ({ preference: i * 10, exchange: `h${i}.many.test` })),
  },
  'h1.many.test': { A: ['127.0.2.1'] },
  'h2.many.test': { A: ['127.0.2.2'] },
  'h3.many.test': { A: ['127.0.2.3'] },
  'h4.many.test': { A: ['127.0.2.4'] },
  'relay.test': { A: ['127.0.3.1'] },
};

const OPTS: ResolveOptions = { port: 25, maxHosts: 5, routes: {} };
let dns: TestDnsServer;

before(async () => {
  dns = await startDnsServer(ZONE);
});
after(async () => {
  await dns.close();
});

const resolver = (random?: () => number) =>
  createResolver({ servers: [dns.address], timeoutMs: 300, tries: 1, ...(random ? { random } : {}) });

function hopsOf(r: Resolution): NextHop[] {
  assert.equal(r.kind, 'hops', `expected hops, got ${JSON.stringify(r)}`);
  return r.kind === 'hops' ? r.hops : [];
}
const hostOrder = (hops: NextHop[]) => [...new Set(hops.map((h) => h.host))];

describe('MX resolution', () => {
  test('MX hosts come in preference order, with every address of each host as a fallback', async () => {
    const hops = hopsOf(await resolver().resolveDestination('multi.test', OPTS));
    assert.deepEqual(hops, [
      { host: 'mx1.multi.test', address: '127.0.0.1', port: 25, family: 4, preference: 10 },
      { host: 'mx2.multi.test', address: '127.0.0.2', port: 25, family: 4, preference: 20 },
      { host: 'mx2.multi.test', address: '::1', port: 25, family: 6, preference: 20 },
    ]);
  });

  test('domain case and trailing dot do not matter', async () => {
    const hops = hopsOf(await resolver().resolveDestination('Multi.TEST.', OPTS));
    assert.deepEqual(hostOrder(hops), ['mx1.multi.test', 'mx2.multi.test']);
  });

  test('equal preferences are shuffled by the injected random; lower preference stays first', async () => {
    const low = hostOrder(hopsOf(await resolver(() => 0).resolveDestination('eq.test', OPTS)));
    const high = hostOrder(hopsOf(await resolver(() => 0.999).resolveDestination('eq.test', OPTS)));
    assert.equal(low[0], 'first.eq.test');
    assert.equal(high[0], 'first.eq.test');
    assert.deepEqual([...low].sort(), [...high].sort());
    assert.deepEqual(low.slice(1).sort(), ['a.eq.test', 'b.eq.test', 'c.eq.test']);
    assert.notDeepEqual(low, high, 'different random draws must give different orders');
  });

  test('orderMx is a per-preference permutation for any random source', () => {
    const records = [{ priority: 10, n: 'a' }, { priority: 0, n: 'z' }, { priority: 10, n: 'b' }, { priority: 20, n: 'c' }];
    for (const r of [0, 0.25, 0.5, 0.75, 0.999999]) {
      const out = orderMx(records, () => r);
      assert.deepEqual(out.map((x) => x.priority), [0, 10, 10, 20]);
      assert.deepEqual(out.slice(1, 3).map((x) => x.n).sort(), ['a', 'b']);
    }
  });

  test('null MX (RFC 7505) fails permanently with 556 5.1.10 and never falls back to A', async () => {
    const r = await resolver().resolveDestination('nullmx.test', OPTS);
    assert.equal(r.kind, 'failed');
    assert.ok(r.kind === 'failed');
    assert.equal(r.enhanced, '5.1.10');
    assert.equal(r.code, 556);
    assert.match(r.text, /null MX/);
  });

  test('no MX records → implicit MX: the domain\'s own A and AAAA', async () => {
    const hops = hopsOf(await resolver().resolveDestination('nomx.test', { ...OPTS, port: 2525 }));
    assert.deepEqual(hops, [
      { host: 'nomx.test', address: '127.0.0.5', port: 2525, family: 4, preference: 0 },
      { host: 'nomx.test', address: '::1', port: 2525, family: 6, preference: 0 },
    ]);
  });

  test('no MX and no address → failed 5.1.2', async () => {
    const r = await resolver().resolveDestination('empty.test', OPTS);
    assert.deepEqual([r.kind, r.kind === 'failed' && r.enhanced], ['failed', '5.1.2']);
  });

  test('NXDOMAIN (explicit or unknown name) → failed 550 5.1.2 "Domain not found"', async () => {
    for (const d of ['nx.test', 'never-heard-of.test']) {
      const r = await resolver().resolveDestination(d, OPTS);
      assert.ok(r.kind === 'failed', `${d}: ${JSON.stringify(r)}`);
      assert.equal(r.enhanced, '5.1.2');
      assert.equal(r.code, 550);
      assert.match(r.text, /^Domain not found/);
    }
  });

  test('SERVFAIL, REFUSED and no reply are temporary: deferred 4.4.3, never failed', async () => {
    for (const d of ['broken.test', 'refused.test', 'slow.test']) {
      const r = await resolver().resolveDestination(d, OPTS);
      assert.ok(r.kind === 'deferred', `${d}: ${JSON.stringify(r)}`);
      assert.equal(r.enhanced, '4.4.3');
      assert.match(r.text, /^DNS temporary failure/);
    }
  });

  test('MX hosts without addresses are skipped; when all are, the result is deferred', async () => {
    const partial = hopsOf(await resolver().resolveDestination('partial.test', OPTS));
    assert.deepEqual(hostOrder(partial), ['mx1.multi.test']);
    const dangling = await resolver().resolveDestination('dangling.test', OPTS);
    assert.ok(dangling.kind === 'deferred', JSON.stringify(dangling));
    assert.equal(dangling.enhanced, '4.4.4');
  });

  test('maxHosts caps the MX hosts looked up and returned', async () => {
    const before = dns.queries.length;
    const hops = hopsOf(await resolver().resolveDestination('many.test', { ...OPTS, maxHosts: 2 }));
    assert.deepEqual(hostOrder(hops), ['h1.many.test', 'h2.many.test']);
    const asked = dns.queries.slice(before).map((q) => q.name);
    assert.ok(!asked.includes('h3.many.test') && !asked.includes('h4.many.test'), asked.join(','));
  });
});

describe('address literals', () => {
  test('[IPv4] and [IPv6:…] are used directly, without any DNS query', async () => {
    const before = dns.queries.length;
    assert.deepEqual(hopsOf(await resolver().resolveDestination('[192.0.2.1]', OPTS)),
      [{ host: '192.0.2.1', address: '192.0.2.1', port: 25, family: 4, preference: 0 }]);
    assert.deepEqual(hopsOf(await resolver().resolveDestination('[IPv6:2001:db8::1]', OPTS)),
      [{ host: '2001:db8::1', address: '2001:db8::1', port: 25, family: 6, preference: 0 }]);
    assert.equal(dns.queries.length, before);
  });

  test('a malformed literal fails 5.1.2', async () => {
    for (const d of ['[999.1.1.1]', '[IPv6:nope]', '[2001:db8::1]']) {
      const r = await resolver().resolveDestination(d, OPTS);
      assert.ok(r.kind === 'failed' && r.enhanced === '5.1.2', `${d}: ${JSON.stringify(r)}`);
    }
  });
});

describe('routes', () => {
  const routes = {
    'routed.test': 'relay.test:2525',
    'Other.Test': ['[::1]:2600', '127.0.0.7:2601'],
    'smart.test': { hosts: ['127.0.0.8:587'], tls: 'required' as const, auth: { user: 'u', password: 'p' } },
  };

  test('a routed domain skips MX and resolves the route host name', async () => {
    const before = dns.queries.length;
    const r = await resolver().resolveDestination('routed.test', { ...OPTS, routes });
    assert.deepEqual(hopsOf(r), [{ host: 'relay.test', address: '127.0.3.1', port: 2525, family: 4, preference: 0 }]);
    assert.ok(r.kind === 'hops');
    assert.equal(r.route, 'route:relay.test:2525');
    const asked = dns.queries.slice(before);
    assert.ok(!asked.some((q) => q.type === 'MX'), JSON.stringify(asked));
  });

  test('IP literal route hosts are used as is, in order; tls/auth travel with the route', async () => {
    const hops = hopsOf(await resolver().resolveDestination('other.test', { ...OPTS, routes }));
    assert.deepEqual(hops.map((h) => [h.address, h.port, h.family, h.preference]), [['::1', 2600, 6, 0], ['127.0.0.7', 2601, 4, 1]]);
    const smart = await resolver().resolveDestination('smart.test', { ...OPTS, routes });
    assert.ok(smart.kind === 'hops');
    assert.equal(smart.routeConfig?.tls, 'required');
    assert.deepEqual(smart.routeConfig?.auth, { user: 'u', password: 'p' });
  });

  test('"*" is a smarthost for every domain not routed otherwise, even ones DNS does not know', async () => {
    const withStar = { ...routes, '*': '127.0.0.9:2525' };
    const before = dns.queries.length;
    const r = await resolver().resolveDestination('nx.test', { ...OPTS, routes: withStar });
    assert.deepEqual(hopsOf(r).map((h) => `${h.address}:${h.port}`), ['127.0.0.9:2525']);
    assert.equal(dns.queries.length, before);
    const direct = await resolver().resolveDestination('routed.test', { ...OPTS, routes: withStar });
    assert.deepEqual(hopsOf(direct).map((h) => h.address), ['127.0.3.1']);
  });

  test('an unresolvable route host defers rather than bounces', async () => {
    const r = await resolver().resolveDestination('x.test', { ...OPTS, routes: { '*': 'gone.test:25' } });
    assert.ok(r.kind === 'deferred', JSON.stringify(r));
  });

  test('routeFor and destinationKey: routed domains share the route key, others key by lowercased domain', () => {
    const withStar = { ...routes, '*': ['smart.example:25', '[::1]:26'] };
    assert.equal(destinationKey('Routed.Test', routes), 'route:relay.test:2525');
    assert.equal(destinationKey('OTHER.test', routes), 'route:[::1]:2600,127.0.0.7:2601');
    assert.equal(destinationKey('Example.COM', routes), 'example.com');
    assert.equal(destinationKey('a.test', withStar), 'route:smart.example:25,[::1]:26');
    assert.equal(destinationKey('b.test', withStar), destinationKey('a.test', withStar));
    assert.equal(routeFor('sub.routed.test', routes), undefined, 'no suffix matching');
    assert.equal(routeFor('routed.test', routes)?.matched, 'routed.test');
    assert.equal(routeFor('zzz.test', withStar)?.matched, '*');
  });

  test('LMTP routes: a Unix socket is the one next hop; the key names the protocol and the socket', async () => {
    const lmtp = { 'dove.test': { protocol: 'lmtp' as const, socket: '/run/dovecot/lmtp' }, 'tcp.test': { protocol: 'lmtp' as const, hosts: ['127.0.0.1:24'] } };
    const r = await resolver().resolveDestination('dove.test', { ...OPTS, routes: lmtp });
    assert.ok(r.kind === 'hops', JSON.stringify(r));
    assert.equal(r.hops.length, 1);
    assert.equal(r.hops[0]!.socket, '/run/dovecot/lmtp');
    assert.equal(r.routeConfig?.protocol, 'lmtp');
    assert.equal(destinationKey('dove.test', lmtp), 'route:lmtp:unix:/run/dovecot/lmtp');
    assert.equal(destinationKey('tcp.test', lmtp), 'route:lmtp:127.0.0.1:24');
    assert.equal(routeFor('routed.test', routes)?.protocol, 'smtp');
  });
});

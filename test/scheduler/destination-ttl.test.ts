/**
 * A domain's destination (its MX host set) is remembered for its MX TTL,
 * capped by `delivery.destination_cache_ttl`, at least 60 s: the resolver
 * Halcyon builds from `[dns] servers` asks the loopback DNS server
 * (test/support/dns-server), and the map reads a fake clock.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createResolver } from '../../src/delivery/resolve.js';
import { DestinationMap } from '../../src/destination/map.js';
import { startDnsServer, type TestDnsServer, type Zone } from '../support/dns-server.js';

const SECOND = 1000;
const HOUR = 3600 * SECOND;

const servers: TestDnsServer[] = [];
after(async () => { for (const s of servers) await s.close(); });

function zone(exchange: string, ttl: number): Zone {
  return { 'ttl.test': { MX: [{ preference: 10, exchange }], TTL: ttl } };
}

async function setup(ttl: number, capMs: number) {
  const dns = await startDnsServer(zone('mx1.test', ttl));
  servers.push(dns);
  const resolver = createResolver({ servers: [dns.address], timeoutMs: 2000 });
  let now = 1_000_000;
  const map = new DestinationMap({ mxHostSet: resolver.mxHostSet, clock: () => now, settings: () => ({ by: 'mx', ttlMs: capMs }) });
  return { dns, map, advance: (ms: number) => { now += ms; } };
}

describe('destination cache follows the MX TTL', () => {
  test('an MX record with TTL 300 changed on the server is picked up after 300 s, not before', async () => {
    const { dns, map, advance } = await setup(300, HOUR);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx1.test');
    dns.setZone(zone('mx2.test', 300));
    advance(299 * SECOND);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx1.test', 'still the old host set before its TTL ran out');
    advance(2 * SECOND);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx2.test', 'the new host set once the TTL ran out');
  });

  test('a TTL longer than destination_cache_ttl is cut to it', async () => {
    const { dns, map, advance } = await setup(86_400, HOUR);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx1.test');
    dns.setZone(zone('mx2.test', 86_400));
    advance(HOUR - SECOND);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx1.test');
    advance(2 * SECOND);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx2.test');
  });

  test('a TTL of 5 s is remembered for the 60 s floor', async () => {
    const { dns, map, advance } = await setup(5, HOUR);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx1.test');
    dns.setZone(zone('mx2.test', 5));
    const asked = dns.queries.length;
    advance(59 * SECOND);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx1.test');
    assert.equal(dns.queries.length, asked, 'no DNS question within the floor');
    advance(2 * SECOND);
    assert.equal(await map.keyFor('ttl.test'), 'mx:mx2.test');
  });
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { actsOn, dnsblQueryName, DnsblChecker, type ResolveA } from './dnsbl.js';

const silent = pino({ level: 'silent' });

describe('DNSBL query names (RFC 5782 §2)', () => {
  test('IPv4: reversed octets under the zone; v4-mapped IPv6 is its IPv4', () => {
    assert.equal(dnsblQueryName('192.0.2.99', 'zen.example.test'), '99.2.0.192.zen.example.test');
    assert.equal(dnsblQueryName('::ffff:192.0.2.99', 'zen.example.test.'), '99.2.0.192.zen.example.test');
  });
  test('IPv6: 32 reversed nibbles, "::" expanded', () => {
    assert.equal(dnsblQueryName('2001:db8:1:2::1', 'v6.test'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.v6.test');
    assert.equal(dnsblQueryName('::1', 'v6.test'), `1${'.0'.repeat(31)}.v6.test`);
  });
  test('not an IP → no query', () => assert.equal(dnsblQueryName('nope', 'z.test'), undefined));
});

describe('which answers count', () => {
  test('without codes: any 127/8 answer but 127.255.255.x (the lists\' "query refused" codes)', () => {
    const l = { zone: 'z', codes: [] };
    assert.equal(actsOn(l, '127.0.0.2'), true);
    assert.equal(actsOn(l, '127.0.0.11'), true);
    assert.equal(actsOn(l, '127.255.255.254'), false);
    assert.equal(actsOn(l, '10.0.0.1'), false);
  });
  test('with codes: only those', () => {
    const l = { zone: 'z', codes: ['127.0.0.4'] };
    assert.equal(actsOn(l, '127.0.0.4'), true);
    assert.equal(actsOn(l, '127.0.0.2'), false);
  });
});

describe('DnsblChecker', () => {
  const lists = [{ zone: 'a.test', codes: [] }, { zone: 'b.test', codes: ['127.0.0.3'] }];
  function fake(answers: Record<string, { address: string; ttl: number }[] | string>) {
    const asked: string[] = [];
    const resolve: ResolveA = async (name) => {
      asked.push(name);
      const a = answers[name];
      if (a === undefined) throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
      if (typeof a === 'string') throw Object.assign(new Error(a), { code: a });
      return a;
    };
    return { asked, resolve };
  }

  test('the first list in config order that lists the client wins; an answer outside a list\'s codes is no listing', async () => {
    const f = fake({ '1.2.0.192.a.test': [{ address: '127.0.0.2', ttl: 60 }], '1.2.0.192.b.test': [{ address: '127.0.0.3', ttl: 60 }],
      '2.2.0.192.b.test': [{ address: '127.0.0.2', ttl: 60 }] });
    const c = new DnsblChecker(lists, f.resolve, silent);
    assert.deepEqual(await c.check('192.0.2.1'), { zone: 'a.test', answer: '127.0.0.2' });
    assert.equal(await c.check('192.0.2.2'), undefined);
  });

  test('answers are cached until their TTL runs out; "not listed" for a minute', async () => {
    let now = 1_000_000;
    const f = fake({ '1.2.0.192.a.test': [{ address: '127.0.0.2', ttl: 300 }] });
    const c = new DnsblChecker([lists[0]!], f.resolve, silent, () => now);
    await c.check('192.0.2.1');
    await c.check('192.0.2.5');
    now += 59_000;
    await c.check('192.0.2.1');
    await c.check('192.0.2.5');
    assert.equal(f.asked.length, 2, 'both cached within a minute');
    now += 2_000;
    await c.check('192.0.2.5');
    assert.equal(f.asked.length, 3, 'the negative answer expired after a minute');
    now += 240_000;
    assert.deepEqual(await c.check('192.0.2.1'), { zone: 'a.test', answer: '127.0.0.2' });
    assert.equal(f.asked.length, 4, 'the listing expired after its 300 s TTL');
  });

  test('a DNS failure or timeout is never a listing, is logged, and is not cached', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => { lines.push(s); } });
    const f = fake({ '1.2.0.192.a.test': 'ETIMEOUT', '1.2.0.192.b.test': 'ESERVFAIL' });
    const c = new DnsblChecker(lists, f.resolve, log);
    assert.equal(await c.check('192.0.2.1'), undefined);
    assert.equal(await c.check('192.0.2.1'), undefined);
    assert.equal(f.asked.length, 4);
    assert.ok(lines.some((l) => /ETIMEOUT/.test(l) && /a\.test/.test(l) && /DNSBL lookup failed/.test(l)), lines.join(''));
  });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeSelfTest, trustedResolvers } from './dane-selftest.js';
import type { DnsReply } from './dnssec-query.js';

const r = (rcode: number, ad: boolean): { reply: DnsReply } => ({ reply: { rcode, ad, answers: [], server: '127.0.0.1:53' } });

test('trustedResolvers: configured servers, else loopback system resolvers only', () => {
  assert.deepEqual(trustedResolvers(['192.0.2.53', '127.0.0.1:5353'], ['10.0.0.1']), { ok: true, servers: [{ host: '192.0.2.53', port: 53 }, { host: '127.0.0.1', port: 5353 }] });
  assert.deepEqual(trustedResolvers([], ['127.0.0.53', '::1']), { ok: true, servers: [{ host: '127.0.0.53', port: 53 }, { host: '::1', port: 53 }] });
  const remote = trustedResolvers([], ['127.0.0.1', '10.255.255.53']);
  assert.equal(remote.ok, false);
  if (!remote.ok) assert.match(remote.reason, /system resolver 10\.255\.255\.53 is not on this host/);
  assert.equal(trustedResolvers([], []).ok, false);
});

test('judgeSelfTest: only AD on the signed name and SERVFAIL on the bogus one pass', () => {
  assert.equal(judgeSelfTest('s', r(0, true), 'b', r(2, false)).ok, true);
  assert.equal(judgeSelfTest('s', r(3, true), 'b', r(2, false)).ok, true, 'a secure NXDOMAIN proves validation too');
  const cases: [string, ReturnType<typeof r> | { error: string }, ReturnType<typeof r> | { error: string }, RegExp][] = [
    ['no AD', r(0, false), r(2, false), /does not validate DNSSEC: its answer for the signed name s has no AD bit/],
    ['signed SERVFAIL', r(2, false), r(2, false), /the signed name s failed with rcode 2 \(SERVFAIL\)/],
    ['signed no answer', { error: 'timeout' }, r(2, false), /the signed name s got no answer \(timeout\)/],
    ['bogus answered', r(0, true), r(0, false), /answered the bogus name b \(rcode 0\) instead of refusing it with SERVFAIL/],
    ['bogus no answer', r(0, true), { error: 'timeout' }, /cannot tell/],
  ];
  for (const [name, s, b, why] of cases) {
    const v = judgeSelfTest('s', s, 'b', b);
    assert.equal(v.ok, false, name);
    if (!v.ok) assert.match(v.reason, why, name);
  }
});

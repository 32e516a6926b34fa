import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainPlan, hostPolicy, readReply, tlsaName, type HostPolicy, type Lookup } from './dane.js';
import { RRTYPE, type DnsReply } from './dnssec-query.js';

const reply = (over: Partial<DnsReply> = {}): DnsReply => ({ rcode: 0, ad: true, answers: [], server: '127.0.0.1:53', ...over });
const tlsa = (usage: number, selector: number, mtype: number, len: number) => ({
  name: '_25._tcp.mx.example.test', type: RRTYPE.TLSA, ttl: 300, data: Buffer.concat([Buffer.from([usage, selector, mtype]), Buffer.alloc(len, 7)]),
});
const secure = (r: DnsReply = reply()): Lookup => ({ kind: 'secure', reply: r });
const insecure: Lookup = { kind: 'insecure', reply: reply({ ad: false }) };
const failed: Lookup = { kind: 'failed', text: 'TLSA _25._tcp.mx.example.test: SERVFAIL' };

test('readReply: SERVFAIL fails, AD is secure, no AD is insecure, a secure NXDOMAIN is secure', () => {
  assert.equal(readReply(reply({ rcode: 2 }), 'x').kind, 'failed');
  assert.match((readReply(reply({ rcode: 2 }), 'TLSA x') as { text: string }).text, /TLSA x: SERVFAIL .* 127\.0\.0\.1:53/);
  assert.equal(readReply(reply({ rcode: 5 }), 'x').kind, 'failed', 'REFUSED');
  assert.equal(readReply(reply(), 'x').kind, 'secure');
  assert.equal(readReply(reply({ ad: false }), 'x').kind, 'insecure');
  assert.equal(readReply(reply({ rcode: 3 }), 'x').kind, 'secure');
});

test('hostPolicy follows RFC 7672 §2.2.2 row by row', () => {
  assert.equal(hostPolicy('mx', failed, undefined).kind, 'unusable', 'address lookup failed');
  assert.equal(hostPolicy('mx', insecure, undefined).kind, 'none', 'insecure address: TLSA not used');
  assert.equal(hostPolicy('mx', secure(), failed).kind, 'unusable', 'TLSA lookup failed: never plaintext');
  assert.equal(hostPolicy('mx', secure(), insecure).kind, 'none');
  assert.equal(hostPolicy('mx', secure(), secure(reply({ rcode: 3 }))).kind, 'none', 'secure NXDOMAIN');
  assert.equal(hostPolicy('mx', secure(), secure()).kind, 'none', 'secure NODATA');
  const dane = hostPolicy('mx', secure(), secure(reply({ answers: [tlsa(3, 1, 1, 32), tlsa(1, 1, 1, 32)] })));
  assert.equal(dane.kind, 'dane');
  if (dane.kind === 'dane') assert.deepEqual(dane.records.map((r) => r.usage), [3], 'PKIX-EE dropped');
  assert.equal(hostPolicy('mx', secure(), secure(reply({ answers: [tlsa(0, 0, 1, 32), tlsa(3, 1, 1, 20)] }))).kind, 'tls-required', 'records, none usable');
});

test('domainPlan: a failed MX defers, an insecure MX means no DANE, a secure one DANE when any host is not "none"', () => {
  const none = new Map<string, HostPolicy>([['mx', { kind: 'none', why: '' }]]);
  assert.equal(domainPlan(failed, none).kind, 'failed');
  assert.equal(domainPlan(insecure, none).kind, 'insecure');
  assert.equal(domainPlan(secure(), none).kind, 'secure-no-tlsa');
  assert.equal(domainPlan(secure(), new Map([...none, ['mx2', { kind: 'unusable', text: 't' }]])).kind, 'dane');
  assert.equal(domainPlan(secure(), new Map([...none, ['mx2', { kind: 'dane', records: [] }]])).kind, 'dane');
});

test('tlsaName is _PORT._tcp.HOST', () => {
  assert.equal(tlsaName('mx.example.test', 25), '_25._tcp.mx.example.test');
});

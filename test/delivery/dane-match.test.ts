/**
 * delivery/dane-match against real certificates (a test CA and leaves it
 * issues): DANE-EE by key and by certificate, DANE-TA with its chain and
 * name checks, and the records SMTP DANE must ignore.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import { association, verifyDane, type Tlsa } from '../../src/delivery/dane-match.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';

let ca: TestCa;
let other: TestCa;
let leaf: X509Certificate;
let caCert: X509Certificate;
let strangerLeaf: X509Certificate;
let now: Date;

before(async () => {
  ca = await makeTestCa();
  other = await makeTestCa();
  leaf = new X509Certificate((await ca.issue(['mx.example.test'])).cert);
  caCert = new X509Certificate(ca.caPem);
  strangerLeaf = new X509Certificate((await other.issue(['mx.example.test'])).cert);
  now = new Date();
});
after(() => { ca?.remove(); other?.remove(); });

const rec = (usage: number, selector: number, mtype: number, cert: X509Certificate): Tlsa => ({ usage, selector, mtype, data: association(cert, selector, mtype) });

test('DANE-EE matches the server certificate by key (3 1 1) or whole certificate (3 0 2, 3 0 0), whatever its name', () => {
  for (const r of [rec(3, 1, 1, leaf), rec(3, 0, 2, leaf), rec(3, 0, 0, leaf)]) {
    const v = verifyDane([leaf, caCert], [r], ['some.other.name'], now);
    assert.equal(v.ok, true, JSON.stringify(v));
  }
});

test('DANE-EE of another key does not match', () => {
  const v = verifyDane([leaf, caCert], [rec(3, 1, 1, strangerLeaf)], ['mx.example.test'], now);
  assert.deepEqual(v, { ok: false, reason: 'certificate matches none of 1 TLSA record(s)' });
});

test('DANE-TA matches a CA in the chain when the leaf is signed by it and names the MX host', () => {
  const v = verifyDane([leaf, caCert], [rec(2, 0, 1, caCert)], ['mx.example.test'], now);
  assert.equal(v.ok, true, JSON.stringify(v));
  const byKey = verifyDane([leaf, caCert], [rec(2, 1, 1, caCert)], ['mx.example.test'], now);
  assert.equal(byKey.ok, true, JSON.stringify(byKey));
});

test('DANE-TA: a wrong name, a leaf the CA did not sign, a CA not sent, or a moment outside the validity fail', () => {
  const wrongName = verifyDane([leaf, caCert], [rec(2, 0, 1, caCert)], ['mx.elsewhere.test'], now);
  assert.equal(wrongName.ok, false);
  if (!wrongName.ok) assert.match(wrongName.reason, /names none of mx\.elsewhere\.test/);
  const notSigned = verifyDane([strangerLeaf, caCert], [rec(2, 0, 1, caCert)], ['mx.example.test'], now);
  assert.equal(notSigned.ok, false);
  if (!notSigned.ok) assert.match(notSigned.reason, /certificate 0 of the chain is not signed by certificate 1/);
  assert.equal(verifyDane([leaf], [rec(2, 0, 1, caCert)], ['mx.example.test'], now).ok, false, 'TA not sent');
  const later = verifyDane([leaf, caCert], [rec(2, 0, 1, caCert)], ['mx.example.test'], new Date(Date.now() + 30 * 86_400_000));
  assert.equal(later.ok, false);
  if (!later.ok) assert.match(later.reason, /not valid now/);
});

test('PKIX-TA (0) and PKIX-EE (1) records, and digests of the wrong length, are ignored', () => {
  const records = [rec(1, 1, 1, leaf), rec(0, 0, 1, caCert), { usage: 3, selector: 1, mtype: 1, data: Buffer.alloc(20) }];
  const v = verifyDane([leaf, caCert], records, ['mx.example.test'], now);
  assert.deepEqual(v, { ok: false, reason: 'certificate matches none of 0 TLSA record(s)' });
});

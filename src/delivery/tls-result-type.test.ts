import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tlsResultType } from './tls-result-type.js';

test('tlsResultType reads the failure texts delivery writes', () => {
  assert.equal(tlsResultType('TLS is required but the server does not offer STARTTLS'), 'starttls-not-supported');
  assert.equal(tlsResultType("TLS handshake failed: Hostname/IP does not match certificate's altnames: Host: mx.bad.test"), 'certificate-host-mismatch');
  assert.equal(tlsResultType('TLS handshake failed: certificate has expired'), 'certificate-expired');
  assert.equal(tlsResultType('TLS handshake failed: self-signed certificate in certificate chain'), 'certificate-not-trusted');
  assert.equal(tlsResultType('DANE: certificate of mx.x rejected: certificate matches none of 1 TLSA record(s)'), 'validation-failure');
  assert.equal(tlsResultType('DANE: TLSA _25._tcp.mx.x: SERVFAIL (bogus or unobtainable) from the validating resolver 127.0.0.1:53'), 'dnssec-invalid');
  assert.equal(tlsResultType('connect failed (ECONNREFUSED)'), undefined);
});

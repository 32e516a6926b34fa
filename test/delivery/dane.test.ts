/**
 * DANE outbound (RFC 7672) end to end on loopback, with a real validating
 * resolver: a private unbound serves `dane.test`, signed here with keys made
 * for the test (its only trust anchor), and `plain.test`, unsigned. The MX
 * hosts all point at one remote SMTP server offering STARTTLS with a
 * certificate from a test CA that Halcyon is NOT told about (no
 * tls_ca_file): only the TLSA records can vouch for it.
 *
 * - good TLSA (DANE-EE 3 1 1 of the server's key): delivered over TLS;
 * - DANE-TA (2 0 1 of the CA that issued the certificate, sent in the chain): delivered;
 * - wrong TLSA: nothing delivered, deferred with the reason (RFC 7672 §2.2);
 * - a TLSA record whose signature is bogus: deferred without connecting;
 * - an unsigned domain: opportunistic TLS, delivered;
 * - a DANE domain that also publishes an MTA-STS enforce policy naming other
 *   MX hosts: DANE takes precedence (RFC 8461 §2), delivered — and, with DANE
 *   off, the same policy defers it (so the policy is real);
 * - the self-test passed and said so; with a resolver that does not validate
 *   (unbound without its validator) the self-test turns DANE off, logs why,
 *   and the wrong-TLSA domain is delivered opportunistically.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { firstAttempt, startTestApp, type TestApp } from '../support/halcyon.js';
import { available } from '../support/unavailable.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';
import { startUnbound, unboundMissing, type TestUnbound } from '../support/unbound.js';

let ca: TestCa;
let remote: Remote;
let unbound: TestUnbound | undefined;
let nonValidating: TestUnbound | undefined;
let policyServer: https.Server | undefined;

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

before(async () => {
  if (unboundMissing()) return;
  ca = await makeTestCa();
  const leaf = await ca.issue(['mx.good.dane.test', 'mx.ta.dane.test', 'mx.wrong.dane.test', 'mx.bogus.dane.test', 'mx.sts.dane.test', 'mx.plain.test']);
  // The chain the server sends: its certificate, then the CA's (RFC 7672 §3.1.2: DANE-TA needs it sent).
  remote = await startRemote({ extensions: { starttls: { key: leaf.key, cert: `${leaf.cert.trim()}\n${ca.caPem}` } } });
  const spki = sha256(new X509Certificate(leaf.cert).publicKey.export({ type: 'spki', format: 'der' }));
  const caCert = sha256(new X509Certificate(ca.caPem).raw);
  const p = remote.port;
  const zone = {
    origin: 'dane.test',
    records: [
      'selftest A 127.0.0.1',
      'broken-selftest A 127.0.0.9',
      ...['good', 'ta', 'wrong', 'bogus', 'sts'].flatMap((d) => [`${d} MX 10 mx.${d}`, `mx.${d} A 127.0.0.1`]),
      `_${p}._tcp.mx.good TLSA 3 1 1 ${spki}`,
      `_${p}._tcp.mx.ta TLSA 2 0 1 ${caCert}`,
      `_${p}._tcp.mx.wrong TLSA 3 1 1 ${'ab'.repeat(32)}`,
      `_${p}._tcp.mx.bogus TLSA 3 1 1 ${spki}`,
      `_${p}._tcp.mx.sts TLSA 3 1 1 ${spki}`,
      '_mta-sts.sts TXT "v=STSv1; id=20261206"',
    ],
    tamper: ['broken-selftest.dane.test A', `_${p}._tcp.mx.bogus.dane.test TLSA`],
  };
  const plain = { origin: 'plain.test', records: ['@ MX 10 mx', 'mx A 127.0.0.1'] };
  // The MTA-STS policy of sts.dane.test names an MX host it does not have: enforced alone, it would defer.
  policyServer = https.createServer(await ca.issue(['mta-sts.sts.dane.test']), (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n');
  });
  await new Promise<void>((r) => policyServer!.listen(0, '127.0.0.1', r));
  unbound = await startUnbound({ signed: [zone], unsigned: [plain] });
  nonValidating = await startUnbound({ signed: [zone], unsigned: [plain], validate: false });
});

after(async () => {
  await remote?.close();
  await unbound?.close();
  await nonValidating?.close();
  if (policyServer) await new Promise((r) => policyServer!.close(r));
  ca?.remove();
});

async function startWith(resolver: TestUnbound, logLines: string[]): Promise<TestApp> {
  const sink = new Writable({ write(chunk: Buffer, _e, done) { logLines.push(chunk.toString()); done(); } });
  return startTestApp({
    dns: { servers: [resolver.address], timeout: '2s', selftest_signed: 'selftest.dane.test', selftest_bogus: 'broken-selftest.dane.test' },
    delivery: {
      port: remote.port, retry_initial: '1h', destination_backoff: '1h', tls_ca_file: ca.caFile,
      mta_sts_hosts: { 'mta-sts.sts.dane.test': `127.0.0.1:${(policyServer!.address() as AddressInfo).port}` },
    },
  }, { logger: pino({ level: 'info' }, sink) });
}

const transactionsTo = (domain: string) => remote.transactions.filter((t) => t.rcpts.some((r) => r.endsWith(`@${domain}`)));
const overTls = (domain: string) => transactionsTo(domain).map((t) => remote.connections.find((c) => c.id === t.connection)?.tls);

test('with a validating resolver: the self-test turns DANE on, and each TLSA case is honoured', async (t) => {
  if (!available(t, unboundMissing())) return;
  const logLines: string[] = [];
  const h = await startWith(unbound!, logLines);
  try {
    await t.test('good DANE-EE record: delivered over TLS, authenticated by the record', async () => {
      const r = await firstAttempt(h, 'good.dane.test');
      assert.equal(r.state, 'delivered', r.text);
      assert.deepEqual(overTls('good.dane.test'), [true]);
      assert.ok(logLines.some((l) => l.includes('"event":"dane"') && /mx\.good\.dane\.test authenticated \(DANE-EE 3 1 1/.test(l)),
        logLines.filter((l) => l.includes('dane')).join('') || 'no dane log line');
    });

    await t.test('DANE-TA record of the issuing CA: delivered, the name checked', async () => {
      const r = await firstAttempt(h, 'ta.dane.test');
      assert.equal(r.state, 'delivered', r.text);
      assert.deepEqual(overTls('ta.dane.test'), [true]);
      assert.ok(logLines.some((l) => /mx\.ta\.dane\.test authenticated \(DANE-TA 2 0 1 [0-9a-f]+ for mx\.ta\.dane\.test\)/.test(l)));
    });

    await t.test('wrong TLSA record: nothing delivered, deferred with the reason', async () => {
      const r = await firstAttempt(h, 'wrong.dane.test');
      assert.equal(r.state, 'deferred');
      assert.match(r.text, /DANE: certificate of mx\.wrong\.dane\.test rejected: certificate matches none of 1 TLSA record/);
      assert.equal(transactionsTo('wrong.dane.test').length, 0, 'no transaction, in TLS or in plaintext');
    });

    await t.test('TLSA record with a bogus signature: deferred, the host not even connected to', async () => {
      const connections = remote.connections.length;
      const r = await firstAttempt(h, 'bogus.dane.test');
      assert.equal(r.state, 'deferred');
      assert.match(r.text, /DANE: TLSA _\d+\._tcp\.mx\.bogus\.dane\.test: SERVFAIL/);
      assert.equal(remote.connections.length, connections, 'no connection');
      assert.equal(transactionsTo('bogus.dane.test').length, 0);
    });

    await t.test('unsigned domain: opportunistic TLS, delivered', async () => {
      const r = await firstAttempt(h, 'plain.test');
      assert.equal(r.state, 'delivered', r.text);
      assert.deepEqual(overTls('plain.test'), [true]);
      assert.ok(!logLines.some((l) => l.includes('"event":"dane"') && l.includes('plain.test')), 'DANE did not apply');
    });

    await t.test('DANE domain with an MTA-STS policy naming other MX hosts: DANE takes precedence, delivered', async () => {
      const r = await firstAttempt(h, 'sts.dane.test');
      assert.equal(r.state, 'delivered', r.text);
      assert.ok(logLines.some((l) => /mx\.sts\.dane\.test authenticated \(DANE-EE/.test(l)));
    });

    await t.test('TLS-RPT counts each DANE session under its MX host, failures with their RFC 8460 result type', async () => {
      await h.app.tlsRpt.recorder.flush();
      const rows = (await h.app.store.tlsReports.tlsSessionCounts()).filter((r) => r.policyType === 'tlsa');
      const of = (host: string) => rows.filter((r) => r.policyDomain === host).map((r) => [r.resultType, r.sessions]);
      assert.deepEqual(of('mx.good.dane.test'), [['', 1]]);
      assert.deepEqual(of('mx.wrong.dane.test'), [['validation-failure', 1]]);
      assert.deepEqual(of('mx.bogus.dane.test'), [['dnssec-invalid', 1]]);
      const figures = (await h.app.admin.destinations()).flatMap((d) => d.tlsReports ?? []).find((r) => r.domain === 'mx.good.dane.test');
      assert.deepEqual({ mode: figures?.mode, success: figures?.success }, { mode: 'dane', success: 1 });
    });

    const selftest = logLines.filter((l) => l.includes('"dane_selftest"'));
    assert.equal(selftest.length, 1, selftest.join(''));
    assert.match(selftest[0]!, /"dane":"on"/);
    assert.match(selftest[0]!, /selftest\.dane\.test secure, broken-selftest\.dane\.test refused/);
  } finally {
    await h.stop();
  }
});

test('with a resolver that does not validate: the self-test turns DANE off and logs why', async (t) => {
  if (!available(t, unboundMissing())) return;
  const logLines: string[] = [];
  const h = await startWith(nonValidating!, logLines);
  try {
    // Without DANE, the wrong TLSA record is not looked at: opportunistic TLS delivers.
    const before = transactionsTo('wrong.dane.test').length;
    const r = await firstAttempt(h, 'wrong.dane.test');
    assert.equal(r.state, 'delivered', r.text);
    assert.equal(transactionsTo('wrong.dane.test').length, before + 1);
    const selftest = logLines.filter((l) => l.includes('"dane_selftest"'));
    assert.equal(selftest.length, 1, selftest.join(''));
    assert.match(selftest[0]!, /"level":50/, 'logged as an error');
    assert.match(selftest[0]!, /"dane":"off"/);
    assert.match(selftest[0]!, /does not validate DNSSEC: its answer for the signed name selftest\.dane\.test has no AD bit/);
    // Without DANE, the MTA-STS policy of sts.dane.test is enforced, and it names no MX host the domain has.
    const sts = await firstAttempt(h, 'sts.dane.test');
    assert.equal(sts.state, 'deferred');
    assert.match(sts.text, /MTA-STS policy of sts\.dane\.test \(mx: mx\.elsewhere\.test\) matches no MX host/);
  } finally {
    await h.stop();
  }
});

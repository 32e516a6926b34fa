/**
 * MTA-STS outbound (RFC 8461) end to end on loopback: the loopback DNS server
 * serves MX and `_mta-sts` records, a local HTTPS server (certificate from a
 * test CA made with selfsigned, trusted through `[delivery] tls_ca_file`) serves the policies,
 * `[delivery] mta_sts_hosts` points the policy hosts at it, and the remote
 * SMTP server offers STARTTLS with a certificate for mx.good.test only.
 *
 * - enforce, certificate valid for the MX: delivered over TLS, counted (TLS-RPT);
 * - enforce, certificate for another name: deferred with the reason, and
 *   nothing sent in plaintext;
 * - enforce, no MX host in the policy: deferred, no connection;
 * - testing, certificate mismatch: delivered, and logged;
 * - the policy host found only by the configured resolver (`[dns] servers`,
 *   not the operating system's): fetched, and enforced;
 * - a TXT record naming a policy that cannot be fetched: logged and counted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { firstAttempt, startTestApp, type TestApp } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';

const POLICIES: Record<string, string> = {
  'mta-sts.good.test': 'version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 86400\n',
  'mta-sts.bad.test': 'version: STSv1\nmode: enforce\nmx: mx.bad.test\nmax_age: 86400\n',
  'mta-sts.nomatch.test': 'version: STSv1\nmode: enforce\nmx: mx.elsewhere.test\nmax_age: 86400\n',
  'mta-sts.testing.test': 'version: STSv1\nmode: testing\nmx: mx.testing.test\nmax_age: 86400\n',
  'mta-sts.viadns.test': 'version: STSv1\nmode: enforce\nmx: mx.viadns.test\nmax_age: 86400\n',
};
// gone.test publishes a TXT record, but its policy host serves no policy.
const DOMAINS = ['good', 'bad', 'nomatch', 'testing', 'viadns', 'gone'];

let ca: TestCa;
let dns: TestDnsServer;
let policyServer: https.Server;
let remote: Remote;
let h: TestApp;
const logLines: string[] = [];

before(async () => {
  ca = await makeTestCa();
  const zone: Record<string, { MX?: { preference: number; exchange: string }[]; A?: string[]; TXT?: string[] }> = {};
  for (const d of DOMAINS) {
    zone[`${d}.test`] = { MX: [{ preference: 10, exchange: `mx.${d}.test` }] };
    zone[`mx.${d}.test`] = { A: ['127.0.0.1'] };
    zone[`_mta-sts.${d}.test`] = { TXT: ['v=STSv1; id=20261130'] };
  }
  // Only the test's DNS server knows this name: the operating system's resolver cannot find it.
  zone['policy-host.viadns.test'] = { A: ['127.0.0.1'] };
  dns = await startDnsServer(zone);
  policyServer = https.createServer(await ca.issue([...Object.keys(POLICIES), 'mta-sts.gone.test']), (req, res) => {
    const policy = req.url === '/.well-known/mta-sts.txt' ? POLICIES[(req.headers.host ?? '').toLowerCase()] : undefined;
    res.writeHead(policy ? 200 : 404, { 'content-type': 'text/plain' }).end(policy ?? 'no such policy');
  });
  await new Promise<void>((r) => policyServer.listen(0, '127.0.0.1', r));
  const policyPort = (policyServer.address() as AddressInfo).port;
  // The MX's certificate names mx.good.test only.
  remote = await startRemote({ extensions: { starttls: await ca.issue(['mx.good.test', 'mx.viadns.test']) } });
  const sink = new Writable({ write(chunk: Buffer, _e, done) { logLines.push(chunk.toString()); done(); } });
  h = await startTestApp({
    dns: { servers: [dns.address], timeout: '2s' },
    delivery: {
      port: remote.port, tls_ca_file: ca.caFile,
      mta_sts_hosts: {
        ...Object.fromEntries(Object.keys(POLICIES).map((host) => [host, `127.0.0.1:${policyPort}`])),
        'mta-sts.gone.test': `127.0.0.1:${policyPort}`,
        // A name, not an address: it must be looked up through [dns] servers.
        'mta-sts.viadns.test': `policy-host.viadns.test:${policyPort}`,
      },
      retry_initial: '1h', destination_backoff: '1h',
    },
  }, { logger: pino({ level: 'info' }, sink) });
});

after(async () => {
  await h?.stop();
  await remote?.close();
  await new Promise((r) => policyServer?.close(r));
  await dns?.close();
  ca?.remove();
});

const deliverTo = (domain: string) => firstAttempt(h, domain);

/** The TLS-RPT counts `halcyon destinations` shows for a policy domain (on whichever destination it goes to). */
async function tlsReport(domain: string) {
  return (await h.app.admin.destinations()).flatMap((d) => d.tlsReports ?? []).find((r) => r.domain === domain);
}

const transactionsTo = (domain: string) => remote.transactions.filter((t) => t.rcpts.some((r) => r.endsWith(`@${domain}`)));

test('enforce, certificate valid for the MX name: delivered over TLS, counted for TLS-RPT', async () => {
  const r = await deliverTo('good.test');
  assert.equal(r.state, 'delivered', r.text);
  const tx = transactionsTo('good.test');
  assert.equal(tx.length, 1);
  assert.equal(remote.connections.find((c) => c.id === tx[0]!.connection)?.tls, true, 'over TLS');
  const report = await tlsReport('good.test');
  assert.deepEqual({ mode: report?.mode, success: report?.success, failure: report?.failure }, { mode: 'enforce', success: 1, failure: 0 });
});

test('enforce, certificate for another name: deferred with the reason, never sent in plaintext', async () => {
  const r = await deliverTo('bad.test');
  assert.equal(r.state, 'deferred');
  assert.match(r.text, /MTA-STS policy of bad\.test \(enforce\): TLS handshake failed/);
  assert.match(r.text, /mx\.bad\.test/);
  assert.equal(transactionsTo('bad.test').length, 0, 'no transaction, in TLS or in plaintext');
  const report = await tlsReport('bad.test');
  assert.equal(report?.failure, 1);
  assert.equal(report?.success, 0);
});

test('enforce, no MX host named by the policy: deferred without connecting', async () => {
  const before = remote.connections.length;
  const r = await deliverTo('nomatch.test');
  assert.equal(r.state, 'deferred');
  assert.match(r.text, /MTA-STS policy of nomatch\.test \(mx: mx\.elsewhere\.test\) matches no MX host \(mx\.nomatch\.test\)/);
  assert.equal(remote.connections.length, before);
});

test('testing, certificate mismatch: delivered, and the failure logged and counted', async () => {
  const r = await deliverTo('testing.test');
  assert.equal(r.state, 'delivered', r.text);
  assert.equal(transactionsTo('testing.test').length, 1);
  const logged = logLines.filter((l) => l.includes('"mta_sts_testing"') && l.includes('testing.test'));
  assert.ok(logged.some((l) => /certificate not valid/.test(l)), logged.join('\n') || 'no mta_sts_testing line');
  const report = await tlsReport('testing.test');
  assert.deepEqual({ mode: report?.mode, failure: report?.failure }, { mode: 'testing', failure: 1 });
});

test('the policy host is looked up through the configured resolver, not the system one: fetched and enforced', async () => {
  const r = await deliverTo('viadns.test');
  assert.equal(r.state, 'delivered', r.text);
  const report = await tlsReport('viadns.test');
  assert.deepEqual({ mode: report?.mode, success: report?.success }, { mode: 'enforce', success: 1 }, 'the policy was fetched and applied');
});

test('a TXT record naming a policy that cannot be fetched is logged and counted', async () => {
  await deliverTo('gone.test');
  const logged = logLines.filter((l) => l.includes('"mta_sts_fetch_failed"') && l.includes('gone.test'));
  assert.ok(logged.some((l) => /HTTP 404/.test(l)), logged.join('\n') || 'no mta_sts_fetch_failed line');
  const metrics = await h.app.metrics.text();
  assert.match(metrics, /halcyon_mta_sts_fetch_failures_total\{[^}]*domain="gone\.test"[^}]*\} 1/);
});

/**
 * TLS-RPT (RFC 8460) end to end on loopback: MTA-STS deliveries to three
 * domains (a loopback DNS server, an HTTPS server for their policies and a
 * remote SMTP server whose certificate names two of the three MX hosts) are
 * counted in the queue; the next day's run builds one report per domain and
 * sends it where its `_smtp._tls` record says:
 *
 * - good.test (2 sessions, both fine) and bad.test (1 session, certificate
 *   for another name) by HTTPS POST to a receiver on loopback: gzipped JSON
 *   that passes RFC 8460's schema, with exactly those counts and the failure
 *   detailed (certificate-host-mismatch, the MX host, its address);
 * - bymail.test by mail, received by a second SMTP server: a
 *   multipart/report (report-type tlsrpt) with the gzipped report attached
 *   under the §5.1 file name, DKIM-signed for the reporting domain (dkimpy
 *   verifies it), and the same schema and counts checks;
 * - once sent, the day's counts are gone from the queue.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { dkimTxtRecord } from '../../src/intake/dkim.js';
import { utcDay } from '../../src/delivery/tls-sessions.js';
import { dkimpyVerify, haveDkimpy } from '../support/dkim-peers.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { firstAttempt, startTestApp, type TestApp } from '../support/halcyon.js';
import { waitUntil } from '../support/postfix.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';
import { tlsRptSchemaProblems } from '../support/tlsrpt-schema.js';
import { available } from '../support/unavailable.js';

const DOMAINS = ['good', 'bad', 'bymail'];
const dkim = generateKeyPairSync('rsa', { modulusLength: 2048 });

let ca: TestCa;
let dns: TestDnsServer;
let web: https.Server;
let remote: Remote;
let reportSink: Remote;
let h: TestApp;
let dir: string;
let dkimpy = false;
const posts: { contentType: string; body: Buffer }[] = [];

before(async () => {
  // Asked first, before the app and its peers load the machine (the check runs Python).
  dkimpy = haveDkimpy();
  ca = await makeTestCa();
  dir = mkdtempSync(join(tmpdir(), 'halcyon-tlsrpt-'));
  const keyFile = join(dir, 'dkim.pem');
  writeFileSync(keyFile, dkim.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  web = https.createServer(await ca.issue([...DOMAINS.map((d) => `mta-sts.${d}.test`), 'reports.test']), (req, res) => {
    if (req.method === 'POST' && req.url === '/tlsrpt') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ contentType: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
        res.writeHead(201).end();
      });
      return;
    }
    const d = /^mta-sts\.(\w+)\.test$/.exec(req.headers.host ?? '')?.[1];
    const ok = d !== undefined && req.url === '/.well-known/mta-sts.txt';
    res.writeHead(ok ? 200 : 404).end(ok ? `version: STSv1\nmode: enforce\nmx: mx.${d}.test\nmax_age: 86400\n` : 'no');
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const webPort = (web.address() as AddressInfo).port;
  const zone: Record<string, { MX?: { preference: number; exchange: string }[]; A?: string[]; TXT?: string[] }> = {
    'reports.test': { A: ['127.0.0.1'] },
    'dkim._domainkey.halcyon.test': { TXT: [dkimTxtRecord(dkim.publicKey)] },
  };
  for (const d of DOMAINS) {
    zone[`${d}.test`] = { MX: [{ preference: 10, exchange: `mx.${d}.test` }] };
    zone[`mx.${d}.test`] = { A: ['127.0.0.1'] };
    zone[`_mta-sts.${d}.test`] = { TXT: ['v=STSv1; id=20261207'] };
    zone[`_smtp._tls.${d}.test`] = { TXT: [d === 'bymail' ? 'v=TLSRPTv1; rua=mailto:tlsrpt@reports.example' : `v=TLSRPTv1; rua=https://reports.test:${webPort}/tlsrpt`] };
  }
  dns = await startDnsServer(zone);
  // The MX's certificate names mx.good.test and mx.bymail.test, not mx.bad.test.
  remote = await startRemote({ extensions: { starttls: await ca.issue(['mx.good.test', 'mx.bymail.test']) } });
  reportSink = await startRemote({});
  h = await startTestApp({
    hostname: 'mx.halcyon.test',
    dns: { servers: [dns.address], timeout: '2s' },
    routes: { 'reports.example': `127.0.0.1:${reportSink.port}` },
    dkim: [{ domain: 'halcyon.test', selector: 'dkim', key: keyFile }],
    tls_rpt: { send: true, organization: 'Halcyon Test', contact: 'postmaster@halcyon.test', from: 'tlsrpt@halcyon.test' },
    delivery: {
      port: remote.port, tls_ca_file: ca.caFile, retry_initial: '1h', destination_backoff: '1h',
      // One message per session: the two messages to good.test are two TLS sessions (a reused connection is one).
      max_messages_per_connection: 1,
      mta_sts_hosts: Object.fromEntries(DOMAINS.map((d) => [`mta-sts.${d}.test`, `127.0.0.1:${webPort}`])),
    },
  });
});

after(async () => {
  await h?.stop();
  await remote?.close();
  await reportSink?.close();
  await new Promise((r) => web?.close(r));
  await dns?.close();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const deliverTo = async (domain: string, n: number): Promise<string> => (await firstAttempt(h, domain, `to ${domain} ${n}`)).state;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed reports, checked by the schema first

const policyOf = (report: Json) => report.policies[0] as Json;

test('the counts are kept in the queue, and the next day each domain gets its report: HTTPS and mail, schema and counts right', async (t) => {
  assert.equal(await deliverTo('good.test', 1), 'delivered');
  assert.equal(await deliverTo('good.test', 2), 'delivered');
  assert.equal(await deliverTo('bad.test', 1), 'deferred');
  assert.equal(await deliverTo('bymail.test', 1), 'delivered');
  await h.app.tlsRpt.recorder.flush();
  const today = utcDay(Date.now());
  const stored = await h.app.store.tlsReports.tlsSessionCounts(today);
  assert.deepEqual(stored.map((r) => [r.policyDomain, r.resultType, r.sessions]).sort(), [
    ['bad.test', 'certificate-host-mismatch', 1], ['bymail.test', '', 1], ['good.test', '', 2],
  ]);

  assert.deepEqual(await h.app.tlsRpt.sender.runOnce(Date.now()), [], 'nothing before the day is over');
  const sent = await h.app.tlsRpt.sender.runOnce(Date.now() + 86_400_000);
  assert.deepEqual(sent.map((s) => [s.policyDomain, s.outcome]).sort(), [['bad.test', 'sent'], ['bymail.test', 'sent'], ['good.test', 'sent']], JSON.stringify(sent));
  assert.deepEqual(await h.app.store.tlsReports.tlsSessionCounts(today), [], 'sent: the counts are gone');

  await t.test('HTTPS: gzipped JSON that passes the schema, with the right counts', () => {
    assert.equal(posts.length, 2);
    const reports = posts.map((p) => {
      assert.equal(p.contentType, 'application/tlsrpt+gzip');
      return JSON.parse(gunzipSync(p.body).toString('utf8')) as Json;
    });
    for (const r of reports) assert.deepEqual(tlsRptSchemaProblems(r), []);
    const good = reports.find((r) => policyOf(r).policy['policy-domain'] === 'good.test')!;
    const bad = reports.find((r) => policyOf(r).policy['policy-domain'] === 'bad.test')!;
    assert.deepEqual(good['date-range'], { 'start-datetime': `${today}T00:00:00Z`, 'end-datetime': `${today}T23:59:59Z` });
    assert.equal(good['organization-name'], 'Halcyon Test');
    assert.deepEqual(policyOf(good).policy, {
      'policy-type': 'sts', 'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx.good.test', 'max_age: 86400'], 'policy-domain': 'good.test', 'mx-host': ['mx.good.test'],
    });
    assert.deepEqual(policyOf(good).summary, { 'total-successful-session-count': 2, 'total-failure-session-count': 0 });
    assert.deepEqual(policyOf(bad).summary, { 'total-successful-session-count': 0, 'total-failure-session-count': 1 });
    assert.deepEqual(policyOf(bad)['failure-details'], [{
      'result-type': 'certificate-host-mismatch', 'receiving-mx-hostname': 'mx.bad.test', 'receiving-ip': '127.0.0.1', 'failed-session-count': 1,
    }]);
  });

  await t.test('mail: a DKIM-signed multipart/report with the gzipped report attached, received by an SMTP server', async (st) => {
    await waitUntil(async () => {
      await h.app.qmgr.runOnce();
      return reportSink.transactions.length > 0;
    }, 'the report mail at the receiver');
    const raw = reportSink.transactions[0]!.data;
    const text = raw.toString('latin1');
    assert.deepEqual(reportSink.transactions[0]!.rcpts.map((r) => r.replace(/[<>]/g, '')), ['tlsrpt@reports.example']);
    assert.match(text, /^Content-Type: multipart\/report; report-type="tlsrpt"/m);
    assert.match(text, /^TLS-Report-Domain: bymail\.test\r$/m);
    assert.match(text, /^TLS-Report-Submitter: mx\.halcyon\.test\r$/m);
    assert.match(text, /^Subject: Report Domain: bymail\.test Submitter: mx\.halcyon\.test Report-ID: <[^>]+>\r$/m);
    const day0 = Date.parse(`${today}T00:00:00Z`) / 1000;
    const part = new RegExp(`Content-Type: application/tlsrpt\\+gzip\\r\\nContent-Transfer-Encoding: base64\\r\\nContent-Disposition: attachment; filename="mx\\.halcyon\\.test!bymail\\.test!${day0}!${day0 + 86_399}![0-9a-f]+\\.json\\.gz"\\r\\n\\r\\n([A-Za-z0-9+/=\\r\\n]+?)\\r\\n--`).exec(text);
    assert.ok(part, 'the attachment');
    const report = JSON.parse(gunzipSync(Buffer.from(part[1]!.replace(/\r\n/g, ''), 'base64')).toString('utf8')) as Json;
    assert.deepEqual(tlsRptSchemaProblems(report), []);
    assert.equal(policyOf(report).policy['policy-domain'], 'bymail.test');
    assert.deepEqual(policyOf(report).summary, { 'total-successful-session-count': 1, 'total-failure-session-count': 0 });
    assert.match(text, /^DKIM-Signature: .*d=halcyon\.test/m);
    if (available(st, dkimpy ? undefined : 'dkimpy (python3-dkim) is not installed')) {
      const v = dkimpyVerify(raw, { 'dkim._domainkey.halcyon.test': dkimTxtRecord(dkim.publicKey) });
      assert.ok(v.pass, v.detail);
    }
  });
});

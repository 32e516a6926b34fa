import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TlsSessionCount } from '../queue/tls-reports.js';
import { buildReport, parseTlsRptRecords, reportFileName } from './report.js';

test('parseTlsRptRecords: one TLSRPTv1 record, its mailto and https rua', () => {
  assert.deepEqual(parseTlsRptRecords(['v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/v1']),
    { mailto: ['tls@example.com'], https: ['https://r.example.com/v1'] });
  assert.deepEqual(parseTlsRptRecords(['v=spf1 -all', 'v=TLSRPTv1;rua=mailto:a%40b@example.com!10m']), { mailto: ['a@b@example.com'], https: [] });
  assert.equal(parseTlsRptRecords(['v=TLSRPTv1; rua=mailto:a@x', 'v=TLSRPTv1; rua=mailto:b@x']), undefined, 'two records: none (§3)');
  assert.equal(parseTlsRptRecords(['v=TLSRPTv1; rua=ftp://x']), undefined);
  assert.equal(parseTlsRptRecords([]), undefined);
});

const row = (over: Partial<TlsSessionCount>): TlsSessionCount => ({
  day: '2026-12-05', policyDomain: 'a.test', policyType: 'sts', policyStrings: ['version: STSv1', 'mode: enforce'], mxHosts: ['mx.a.test'],
  resultType: '', receivingMx: '', receivingIp: '', sessions: 1, ...over,
});

test('buildReport: one policy entry per policy, totals, failure details per result and host', () => {
  const r = buildReport('2026-12-05', 'a.test', [
    row({ sessions: 5 }), row({ resultType: 'starttls-not-supported', receivingMx: 'mx.a.test', receivingIp: '192.0.2.1', sessions: 2 }),
    row({ policyType: 'tlsa', policyStrings: ['3 1 1 ab'], mxHosts: [], sessions: 3 }),
  ], { organization: 'Org', contact: 'pm@x.test', reportId: 'id-1' });
  assert.deepEqual(r['date-range'], { 'start-datetime': '2026-12-05T00:00:00Z', 'end-datetime': '2026-12-05T23:59:59Z' });
  assert.equal(r.policies.length, 2);
  assert.deepEqual(r.policies[0]!.summary, { 'total-successful-session-count': 5, 'total-failure-session-count': 2 });
  assert.deepEqual(r.policies[0]!['failure-details'], [{ 'result-type': 'starttls-not-supported', 'receiving-mx-hostname': 'mx.a.test', 'receiving-ip': '192.0.2.1', 'failed-session-count': 2 }]);
  assert.deepEqual(r.policies[1]!.policy, { 'policy-type': 'tlsa', 'policy-string': ['3 1 1 ab'], 'policy-domain': 'a.test' });
  assert.equal(r.policies[1]!['failure-details'], undefined);
});

test('reportFileName follows RFC 8460 §5.1', () => {
  assert.equal(reportFileName('mx.example.com', 'a.test', '2026-12-05', 'abc'), 'mx.example.com!a.test!1796428800!1796515199!abc.json.gz');
});

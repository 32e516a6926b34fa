/**
 * test/support/tlsrpt-schema — checks a TLS-RPT aggregate report against the
 * JSON schema of RFC 8460 (§4.4 and Appendix B), written here from the RFC:
 * the required members and their types, the policy types and result types
 * the RFC defines, date-times in RFC 3339 form, non-negative integer counts,
 * and no member the schema does not define. Returns the problems found
 * ([] for a report that conforms); used by the TLS-RPT tests on reports
 * received over HTTPS and by mail.
 */

const POLICY_TYPES = ['tlsa', 'sts', 'no-policy-found'];
const RESULT_TYPES = [
  'starttls-not-supported', 'certificate-host-mismatch', 'certificate-expired', 'certificate-not-trusted', 'validation-failure',
  'tlsa-invalid', 'dnssec-invalid', 'dane-required', 'sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid',
];
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function tlsRptSchemaProblems(report: unknown): string[] {
  const p: string[] = [];
  const members = (o: Obj, at: string, required: readonly string[], optional: readonly string[]) => {
    for (const k of required) if (!(k in o)) p.push(`${at}: "${k}" is required`);
    for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) p.push(`${at}: "${k}" is not in the schema`);
  };
  const str = (v: unknown, at: string) => { if (typeof v !== 'string' || v === '') p.push(`${at}: expected a non-empty string`); };
  const count = (v: unknown, at: string) => { if (!Number.isSafeInteger(v) || (v as number) < 0) p.push(`${at}: expected a non-negative integer`); };
  const strings = (v: unknown, at: string) => {
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) p.push(`${at}: expected an array of strings`);
  };

  if (!isObj(report)) return ['the report is not a JSON object'];
  members(report, 'report', ['organization-name', 'date-range', 'contact-info', 'report-id', 'policies'], []);
  str(report['organization-name'], 'organization-name');
  str(report['contact-info'], 'contact-info');
  str(report['report-id'], 'report-id');
  const range = report['date-range'];
  if (!isObj(range)) p.push('date-range: expected an object');
  else {
    members(range, 'date-range', ['start-datetime', 'end-datetime'], []);
    for (const k of ['start-datetime', 'end-datetime']) if (typeof range[k] !== 'string' || !DATE_TIME.test(range[k] as string)) p.push(`date-range.${k}: expected an RFC 3339 date-time`);
  }
  const policies = report.policies;
  if (!Array.isArray(policies)) return [...p, 'policies: expected an array'];
  policies.forEach((entry: unknown, i) => {
    const at = `policies[${i}]`;
    if (!isObj(entry)) { p.push(`${at}: expected an object`); return; }
    members(entry, at, ['policy', 'summary'], ['failure-details']);
    const pol = entry.policy;
    if (!isObj(pol)) p.push(`${at}.policy: expected an object`);
    else {
      members(pol, `${at}.policy`, ['policy-type', 'policy-domain'], ['policy-string', 'mx-host']);
      if (!POLICY_TYPES.includes(pol['policy-type'] as string)) p.push(`${at}.policy.policy-type: ${String(pol['policy-type'])} is not one of ${POLICY_TYPES.join(', ')}`);
      str(pol['policy-domain'], `${at}.policy.policy-domain`);
      if ('policy-string' in pol) strings(pol['policy-string'], `${at}.policy.policy-string`);
      if ('mx-host' in pol) strings(pol['mx-host'], `${at}.policy.mx-host`);
    }
    const sum = entry.summary;
    if (!isObj(sum)) p.push(`${at}.summary: expected an object`);
    else {
      members(sum, `${at}.summary`, ['total-successful-session-count', 'total-failure-session-count'], []);
      count(sum['total-successful-session-count'], `${at}.summary.total-successful-session-count`);
      count(sum['total-failure-session-count'], `${at}.summary.total-failure-session-count`);
    }
    if ('failure-details' in entry) {
      const details = entry['failure-details'];
      if (!Array.isArray(details)) { p.push(`${at}.failure-details: expected an array`); return; }
      details.forEach((d: unknown, j) => {
        const dat = `${at}.failure-details[${j}]`;
        if (!isObj(d)) { p.push(`${dat}: expected an object`); return; }
        members(d, dat, ['result-type', 'failed-session-count'],
          ['sending-mta-ip', 'receiving-mx-hostname', 'receiving-mx-helo', 'receiving-ip', 'additional-information', 'failure-reason-code']);
        if (!RESULT_TYPES.includes(d['result-type'] as string)) p.push(`${dat}.result-type: ${String(d['result-type'])} is not an RFC 8460 result type`);
        count(d['failed-session-count'], `${dat}.failed-session-count`);
        for (const k of ['sending-mta-ip', 'receiving-mx-hostname', 'receiving-mx-helo', 'receiving-ip', 'additional-information', 'failure-reason-code']) {
          if (k in d) str(d[k], `${dat}.${k}`);
        }
      });
      // §4.4: the failure total is the sum of the failed sessions listed (when every failure is detailed).
      if (isObj(sum) && Number.isSafeInteger(sum['total-failure-session-count'])) {
        const listed = details.reduce((n: number, d: unknown) => n + (isObj(d) && Number.isSafeInteger(d['failed-session-count']) ? d['failed-session-count'] as number : 0), 0);
        if (listed > (sum['total-failure-session-count'] as number)) p.push(`${at}: failure details list ${listed} sessions, more than the total`);
      }
    }
  });
  return p;
}

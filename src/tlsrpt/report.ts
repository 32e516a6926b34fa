/**
 * tlsrpt/report — pure: the RFC 8460 aggregate report of one policy domain
 * for one UTC day (§4, the JSON of Appendix B's schema), the report's file
 * name (§5.1), and the domain's reporting policy, the `_smtp._tls` TXT
 * record (§3).
 *
 * A report has one `policies` entry per policy the domain's sessions were
 * under that day (its type and strings), with the session totals and, for
 * failures, one `failure-details` entry per result type and receiving host.
 *
 * Does not look anything up, compress or send (tlsrpt/sender, tlsrpt/mail).
 */
import type { TlsSessionCount } from '../queue/tls-reports.js';

export interface ReportPolicy {
  readonly policy: {
    readonly 'policy-type': string;
    readonly 'policy-string'?: readonly string[];
    readonly 'policy-domain': string;
    readonly 'mx-host'?: readonly string[];
  };
  readonly summary: { readonly 'total-successful-session-count': number; readonly 'total-failure-session-count': number };
  readonly 'failure-details'?: readonly {
    readonly 'result-type': string;
    readonly 'receiving-mx-hostname'?: string;
    readonly 'receiving-ip'?: string;
    readonly 'failed-session-count': number;
  }[];
}

export interface TlsReport {
  readonly 'organization-name': string;
  readonly 'date-range': { readonly 'start-datetime': string; readonly 'end-datetime': string };
  readonly 'contact-info': string;
  readonly 'report-id': string;
  readonly policies: readonly ReportPolicy[];
}

export interface ReportMeta {
  readonly organization: string;
  readonly contact: string;
  readonly reportId: string;
}

/** The day's report for `policyDomain` from its count rows. */
export function buildReport(day: string, policyDomain: string, rows: readonly TlsSessionCount[], meta: ReportMeta): TlsReport {
  const groups = new Map<string, TlsSessionCount[]>();
  for (const r of rows) {
    const k = JSON.stringify([r.policyType, r.policyStrings]);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const policies = [...groups.values()].map((g): ReportPolicy => {
    const first = g[0]!;
    const ok = g.filter((r) => r.resultType === '').reduce((n, r) => n + r.sessions, 0);
    const failed = g.filter((r) => r.resultType !== '');
    const details = failed.map((r) => ({
      'result-type': r.resultType,
      ...(r.receivingMx ? { 'receiving-mx-hostname': r.receivingMx } : {}),
      ...(r.receivingIp ? { 'receiving-ip': r.receivingIp } : {}),
      'failed-session-count': r.sessions,
    }));
    return {
      policy: {
        'policy-type': first.policyType,
        ...(first.policyStrings.length > 0 ? { 'policy-string': first.policyStrings } : {}),
        'policy-domain': policyDomain,
        ...(first.mxHosts.length > 0 ? { 'mx-host': first.mxHosts } : {}),
      },
      summary: { 'total-successful-session-count': ok, 'total-failure-session-count': failed.reduce((n, r) => n + r.sessions, 0) },
      ...(details.length > 0 ? { 'failure-details': details } : {}),
    };
  });
  return {
    'organization-name': meta.organization,
    'date-range': { 'start-datetime': `${day}T00:00:00Z`, 'end-datetime': `${day}T23:59:59Z` },
    'contact-info': meta.contact,
    'report-id': meta.reportId,
    policies,
  };
}

/** §5.1: `sender!policy-domain!begin-timestamp!end-timestamp!unique-id.json.gz` (timestamps in seconds). */
export function reportFileName(submitter: string, policyDomain: string, day: string, uniqueId: string): string {
  const begin = Date.parse(`${day}T00:00:00Z`) / 1000;
  return `${submitter}!${policyDomain}!${begin}!${begin + 86_399}!${uniqueId}.json.gz`;
}

/** Where a domain wants its reports (§3): mailto and https URIs; none when there is not exactly one TLSRPTv1 record. */
export function parseTlsRptRecords(txt: readonly string[]): { readonly mailto: string[]; readonly https: string[] } | undefined {
  const records = txt.filter((t) => /^v\s*=\s*TLSRPTv1\s*(;|$)/.test(t.trim()));
  if (records.length !== 1) return undefined;
  const rua = records[0]!.split(';').map((f) => f.trim()).find((f) => /^rua\s*=/i.test(f));
  if (!rua) return undefined;
  const uris = rua.slice(rua.indexOf('=') + 1).split(',').map((u) => u.trim()).filter((u) => u !== '');
  const mailto = uris.filter((u) => /^mailto:/i.test(u)).map((u) => decodeURIComponent(u.slice(7).split('?')[0]!.split('!')[0]!));
  const https = uris.filter((u) => /^https:\/\//i.test(u));
  return mailto.length + https.length > 0 ? { mailto, https } : undefined;
}

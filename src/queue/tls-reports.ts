/**
 * queue/tls-reports — the TLS-RPT (RFC 8460) session counts, kept in the
 * queue so every node adds to the same figures and a restart loses nothing
 * already written: one row per (UTC day, policy domain, policy type, result,
 * receiving MX host, receiving IP), with a session count, and the policy
 * (its strings and MX hosts) last seen for that day and domain.
 *
 * A day's report for a domain is sent by one node: `claimTlsReports` leases
 * the domain-days before a given day that are due (not leased, not waiting
 * for a retry) to its owner and returns their rows; `finishTlsReport` removes
 * a sent (or abandoned) report's rows and claim; `retryTlsReport` makes it
 * due again later, one more attempt counted. A dead node's lease runs out.
 *
 * Does not build or send reports (tlsrpt/), nor decide what a session's
 * result is (delivery/tls-result-type).
 */

/** RFC 8460 §4.3: the kinds of policy a session was under. */
export type TlsPolicyType = 'sts' | 'tlsa' | 'no-policy-found';

/** One increment: `sessions` sessions with this outcome. `resultType` '' is a successful session. */
export interface TlsSessionCount {
  /** "2026-12-06" (UTC). */
  readonly day: string;
  readonly policyDomain: string;
  readonly policyType: TlsPolicyType;
  /** The policy as RFC 8460 §4.3.1 writes it: the STS policy's lines, or the TLSA records. */
  readonly policyStrings: readonly string[];
  readonly mxHosts: readonly string[];
  /** '' for success, else an RFC 8460 §4.3.2 result type ("certificate-host-mismatch" …). */
  readonly resultType: string;
  readonly receivingMx: string;
  readonly receivingIp: string;
  readonly sessions: number;
}

/** What makes a count row one row (the tables' primary key): counts with equal keys are summed. */
export const tlsCountKey = (c: TlsSessionCount): string =>
  JSON.stringify([c.day, c.policyDomain, c.policyType, c.resultType, c.receivingMx, c.receivingIp]);

/** A claimed domain-day: what its report is made of. */
export interface TlsReportClaimed {
  readonly day: string;
  readonly policyDomain: string;
  /** Failed sends so far. */
  readonly attempts: number;
  readonly rows: readonly TlsSessionCount[];
}

export interface TlsReportClaim {
  /** Domain-days strictly before this day ("2026-12-07") are complete and may be reported. */
  readonly before: string;
  readonly now: number;
  readonly owner: string;
  readonly leaseUntil: number;
  readonly limit: number;
}

export interface TlsReportStore {
  /** Adds the counts (summing into existing rows; the policy strings and MX hosts become these). */
  countTlsSessions(counts: readonly TlsSessionCount[]): Promise<void>;
  /** Leases up to `limit` due domain-days before `claim.before` to `owner`, with their rows; two claimers never get the same one. */
  claimTlsReports(claim: TlsReportClaim): Promise<TlsReportClaimed[]>;
  /** Removes the domain-day's rows and claim (sent, or given up). Returns how many count rows went. */
  finishTlsReport(day: string, policyDomain: string): Promise<number>;
  /** A send failed: the claim held by `owner` is due again at `nextAttemptAt`, one attempt more. Returns whether it was held. */
  retryTlsReport(day: string, policyDomain: string, owner: string, nextAttemptAt: number): Promise<boolean>;
  /** Every count row of `day` (or of every day when absent), for views and tests. */
  tlsSessionCounts(day?: string): Promise<TlsSessionCount[]>;
}

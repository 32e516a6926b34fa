/**
 * queue/sqlite/tls-reports — TlsReportStore over the SQLite queue
 * (queue/tls-reports): counts summed with an upsert, daily reports claimed
 * with a lease in one IMMEDIATE transaction (so two processes on one file
 * never claim the same domain-day), finished or retried.
 *
 * Does not build or send reports (tlsrpt/).
 */
import type { TlsReportClaim, TlsReportClaimed, TlsReportStore, TlsSessionCount } from '../tls-reports.js';
import { toTlsSessionCount, type RawTlsSession } from '../rows.js';
import type { SqliteDb } from './db.js';

export class SqliteTlsReports implements TlsReportStore {
  constructor(private readonly d: SqliteDb) {}

  async countTlsSessions(counts: readonly TlsSessionCount[]): Promise<void> {
    if (counts.length === 0) return;
    this.d.write('countTlsSessions', () => {
      const up = this.d.st(`INSERT INTO tls_sessions (day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip, sessions, policy_strings, mx_hosts)
        VALUES (@day, @domain, @type, @result, @mx, @ip, @sessions, @strings, @hosts)
        ON CONFLICT (day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip)
        DO UPDATE SET sessions = sessions + excluded.sessions, policy_strings = excluded.policy_strings, mx_hosts = excluded.mx_hosts`);
      for (const c of counts) {
        up.run({
          day: c.day, domain: c.policyDomain, type: c.policyType, result: c.resultType, mx: c.receivingMx, ip: c.receivingIp,
          sessions: c.sessions, strings: JSON.stringify(c.policyStrings), hosts: JSON.stringify(c.mxHosts),
        });
      }
    });
  }

  async claimTlsReports(c: TlsReportClaim): Promise<TlsReportClaimed[]> {
    return this.d.write('claimTlsReports', () => {
      this.d.st(`INSERT INTO tls_report_claims (day, policy_domain)
        SELECT DISTINCT day, policy_domain FROM tls_sessions WHERE day < ? ON CONFLICT DO NOTHING`).run(c.before);
      const claimed = this.d.st(`UPDATE tls_report_claims SET lease_owner = @owner, lease_until = @until
        WHERE (day, policy_domain) IN (SELECT day, policy_domain FROM tls_report_claims
          WHERE day < @before AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until <= @now)
          ORDER BY day, policy_domain LIMIT @limit)
        RETURNING day, policy_domain, attempts`)
        .all({ owner: c.owner, until: c.leaseUntil, before: c.before, now: c.now, limit: c.limit }) as { day: string; policy_domain: string; attempts: number }[];
      const rowsOf = this.d.st('SELECT * FROM tls_sessions WHERE day = ? AND policy_domain = ? ORDER BY policy_type, result_type, receiving_mx, receiving_ip');
      return claimed
        .sort((a, b) => (a.day + a.policy_domain).localeCompare(b.day + b.policy_domain))
        .map((k) => ({ day: k.day, policyDomain: k.policy_domain, attempts: k.attempts, rows: (rowsOf.all(k.day, k.policy_domain) as RawTlsSession[]).map(toTlsSessionCount) }));
    });
  }

  async finishTlsReport(day: string, policyDomain: string): Promise<number> {
    return this.d.write('finishTlsReport', () => {
      this.d.st('DELETE FROM tls_report_claims WHERE day = ? AND policy_domain = ?').run(day, policyDomain);
      return this.d.st('DELETE FROM tls_sessions WHERE day = ? AND policy_domain = ?').run(day, policyDomain).changes;
    });
  }

  async retryTlsReport(day: string, policyDomain: string, owner: string, nextAttemptAt: number): Promise<boolean> {
    return this.d.write('retryTlsReport', () => this.d.st(`UPDATE tls_report_claims SET attempts = attempts + 1, next_attempt_at = ?,
        lease_owner = NULL, lease_until = NULL WHERE day = ? AND policy_domain = ? AND lease_owner = ?`)
      .run(nextAttemptAt, day, policyDomain, owner).changes === 1);
  }

  async tlsSessionCounts(day?: string): Promise<TlsSessionCount[]> {
    const raws = (day === undefined
      ? this.d.st('SELECT * FROM tls_sessions ORDER BY day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip').all()
      : this.d.st('SELECT * FROM tls_sessions WHERE day = ? ORDER BY policy_domain, policy_type, result_type, receiving_mx, receiving_ip').all(day)) as RawTlsSession[];
    return raws.map(toTlsSessionCount);
  }
}

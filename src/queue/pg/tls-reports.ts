/**
 * queue/pg/tls-reports — TlsReportStore over the shared PostgreSQL queue
 * (queue/tls-reports): counts summed with an upsert, daily reports claimed
 * with a lease (`FOR UPDATE SKIP LOCKED`, so nodes claiming at once take
 * different domain-days), finished or retried. The same SQL shapes as
 * queue/sqlite/tls-reports.
 *
 * Does not build or send reports (tlsrpt/).
 */
import { tlsCountKey, type TlsReportClaim, type TlsReportClaimed, type TlsReportStore, type TlsSessionCount } from '../tls-reports.js';
import { toTlsSessionCount, type RawTlsSession } from '../rows.js';
import type { PgDb } from './db.js';

export class PgTlsReports implements TlsReportStore {
  constructor(private readonly d: PgDb) {}

  async countTlsSessions(counts: readonly TlsSessionCount[]): Promise<void> {
    if (counts.length === 0) return;
    // One row per key in a statement (ON CONFLICT cannot touch a row twice): sum duplicates first.
    const merged = new Map<string, TlsSessionCount>();
    for (const c of counts) {
      const k = tlsCountKey(c);
      const had = merged.get(k);
      merged.set(k, had ? { ...c, sessions: had.sessions + c.sessions } : c);
    }
    const list = [...merged.values()];
    await this.d.read('countTlsSessions', `INSERT INTO tls_sessions (day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip, sessions, policy_strings, mx_hosts)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[])
      ON CONFLICT (day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip)
      DO UPDATE SET sessions = tls_sessions.sessions + excluded.sessions, policy_strings = excluded.policy_strings, mx_hosts = excluded.mx_hosts`,
    [list.map((c) => c.day), list.map((c) => c.policyDomain), list.map((c) => c.policyType), list.map((c) => c.resultType),
      list.map((c) => c.receivingMx), list.map((c) => c.receivingIp), list.map((c) => c.sessions),
      list.map((c) => JSON.stringify(c.policyStrings)), list.map((c) => JSON.stringify(c.mxHosts))]);
  }

  async claimTlsReports(c: TlsReportClaim): Promise<TlsReportClaimed[]> {
    return this.d.tx('claimTlsReports', async (q) => {
      await q.query(`INSERT INTO tls_report_claims (day, policy_domain)
        SELECT DISTINCT day, policy_domain FROM tls_sessions WHERE day < $1 ON CONFLICT DO NOTHING`, [c.before]);
      const { rows: claimed } = await q.query<{ day: string; policy_domain: string; attempts: number }>(`UPDATE tls_report_claims SET lease_owner = $1, lease_until = $2
        WHERE (day, policy_domain) IN (SELECT day, policy_domain FROM tls_report_claims
          WHERE day < $3 AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until <= $4)
          ORDER BY day, policy_domain LIMIT $5 FOR UPDATE SKIP LOCKED)
        RETURNING day, policy_domain, attempts`, [c.owner, c.leaseUntil, c.before, c.now, c.limit]);
      const out: TlsReportClaimed[] = [];
      for (const k of claimed.sort((a, b) => (a.day + a.policy_domain).localeCompare(b.day + b.policy_domain))) {
        const { rows } = await q.query<RawTlsSession>(`SELECT * FROM tls_sessions WHERE day = $1 AND policy_domain = $2
          ORDER BY policy_type, result_type, receiving_mx, receiving_ip`, [k.day, k.policy_domain]);
        out.push({ day: k.day, policyDomain: k.policy_domain, attempts: k.attempts, rows: rows.map(toTlsSessionCount) });
      }
      return out;
    });
  }

  async finishTlsReport(day: string, policyDomain: string): Promise<number> {
    return this.d.tx('finishTlsReport', async (q) => {
      await q.query('DELETE FROM tls_report_claims WHERE day = $1 AND policy_domain = $2', [day, policyDomain]);
      return (await q.query('DELETE FROM tls_sessions WHERE day = $1 AND policy_domain = $2', [day, policyDomain])).rowCount ?? 0;
    });
  }

  async retryTlsReport(day: string, policyDomain: string, owner: string, nextAttemptAt: number): Promise<boolean> {
    const rows = await this.d.read('retryTlsReport', `UPDATE tls_report_claims SET attempts = attempts + 1, next_attempt_at = $1,
        lease_owner = NULL, lease_until = NULL WHERE day = $2 AND policy_domain = $3 AND lease_owner = $4 RETURNING day`,
    [nextAttemptAt, day, policyDomain, owner]);
    return rows.length === 1;
  }

  async tlsSessionCounts(day?: string): Promise<TlsSessionCount[]> {
    const rows = day === undefined
      ? await this.d.read<RawTlsSession>('tlsSessionCounts', 'SELECT * FROM tls_sessions ORDER BY day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip')
      : await this.d.read<RawTlsSession>('tlsSessionCounts', 'SELECT * FROM tls_sessions WHERE day = $1 ORDER BY policy_domain, policy_type, result_type, receiving_mx, receiving_ip', [day]);
    return rows.map(toTlsSessionCount);
  }
}

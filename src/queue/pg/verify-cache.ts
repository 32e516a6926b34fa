/**
 * queue/pg/verify-cache — VerifyCache (queue/verify-cache) over the shared
 * PostgreSQL queue: the `verifications` table, one row per address, read and
 * written by every node (the cache Postfix's verify(8) keeps per host, here
 * once for the cluster). The same SQL shapes as queue/sqlite/verify-cache.
 *
 * Does not decide what is cached or for how long (inbound/verifier does).
 */
import type { VerifyCache, VerifyEntry } from '../verify-cache.js';
import { toVerifyEntry, VERIFICATION_COLUMNS, type RawVerification } from '../rows.js';
import type { PgDb } from './db.js';

export class PgVerifyCache implements VerifyCache {
  constructor(private readonly d: PgDb) {}

  async getVerification(address: string, now: number): Promise<VerifyEntry | undefined> {
    const rows = await this.d.read<RawVerification>('getVerification',
      `SELECT ${VERIFICATION_COLUMNS} FROM verifications WHERE address = $1 AND expires_at > $2`, [address, now]);
    return rows[0] && toVerifyEntry(rows[0]);
  }

  async putVerification(e: VerifyEntry): Promise<void> {
    await this.d.read('putVerification', `INSERT INTO verifications (${VERIFICATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (address) DO UPDATE SET verdict = excluded.verdict, reply = excluded.reply, checked_at = excluded.checked_at,
        refresh_at = excluded.refresh_at, expires_at = excluded.expires_at`,
    [e.address, e.verdict, JSON.stringify(e.reply), e.checkedAt, e.refreshAt, e.expiresAt]);
  }

  async deleteVerification(address: string): Promise<boolean> {
    return (await this.d.read('deleteVerification', 'DELETE FROM verifications WHERE address = $1 RETURNING address', [address])).length > 0;
  }

  async listVerifications(now: number, limit: number): Promise<VerifyEntry[]> {
    const rows = await this.d.read<RawVerification>('listVerifications',
      `SELECT ${VERIFICATION_COLUMNS} FROM verifications WHERE expires_at > $1 ORDER BY address COLLATE "C" LIMIT $2`, [now, limit]);
    return rows.map(toVerifyEntry);
  }

  async removeExpiredVerifications(now: number, limit: number): Promise<number> {
    return (await this.d.read('removeExpiredVerifications', `DELETE FROM verifications WHERE address IN
      (SELECT address FROM verifications WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2) RETURNING address`, [now, limit])).length;
  }
}

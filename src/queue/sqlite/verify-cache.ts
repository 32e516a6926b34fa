/**
 * queue/sqlite/verify-cache — VerifyCache (queue/verify-cache) over the SQLite
 * queue: the `verifications` table, one row per address, in the queue's file.
 *
 * Each write is one IMMEDIATE transaction (sqlite/db). Does not decide what
 * is cached or for how long (inbound/verifier does).
 */
import type { VerifyCache, VerifyEntry } from '../verify-cache.js';
import { toVerifyEntry, VERIFICATION_COLUMNS, type RawVerification } from '../rows.js';
import type { SqliteDb } from './db.js';

export class SqliteVerifyCache implements VerifyCache {
  constructor(private readonly d: SqliteDb) {}

  async getVerification(address: string, now: number): Promise<VerifyEntry | undefined> {
    const raw = this.d.st(`SELECT ${VERIFICATION_COLUMNS} FROM verifications WHERE address = ? AND expires_at > ?`).get(address, now) as RawVerification | undefined;
    return raw && toVerifyEntry(raw);
  }

  async putVerification(e: VerifyEntry): Promise<void> {
    this.d.write('putVerification', () => this.d.st(`INSERT INTO verifications (${VERIFICATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (address) DO UPDATE SET verdict = excluded.verdict, reply = excluded.reply, checked_at = excluded.checked_at,
        refresh_at = excluded.refresh_at, expires_at = excluded.expires_at`)
      .run(e.address, e.verdict, JSON.stringify(e.reply), e.checkedAt, e.refreshAt, e.expiresAt));
  }

  async deleteVerification(address: string): Promise<boolean> {
    return this.d.write('deleteVerification', () => this.d.st('DELETE FROM verifications WHERE address = ?').run(address).changes > 0);
  }

  async listVerifications(now: number, limit: number): Promise<VerifyEntry[]> {
    const raws = this.d.st(`SELECT ${VERIFICATION_COLUMNS} FROM verifications WHERE expires_at > ? ORDER BY address LIMIT ?`).all(now, limit) as RawVerification[];
    return raws.map(toVerifyEntry);
  }

  async removeExpiredVerifications(now: number, limit: number): Promise<number> {
    return this.d.write('removeExpiredVerifications', () => this.d.st(`DELETE FROM verifications WHERE address IN
      (SELECT address FROM verifications WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`).run(now, limit).changes);
  }
}

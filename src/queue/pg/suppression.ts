/**
 * queue/pg/suppression — the suppression list (queue/suppression) over the
 * shared PostgreSQL queue: one list for every node. The same SQL shapes as
 * queue/sqlite/suppression; recordOutcomes writes the entries a failure makes
 * through `writeSuppression`, inside its own transaction.
 *
 * Does not decide what suppresses (queue/suppression does).
 */
import { SUPPRESSION_COLUMNS, suppressionRow, toSuppression, type RawSuppression } from '../rows.js';
import { SUPPRESSION_ROW, suppressionKey, upsertSql, type SuppressionEntry, type SuppressionFilter, type SuppressionList } from '../suppression.js';
import type { PgDb, Sql } from './db.js';

/** Writes entries; call it inside the transaction of the change that caused them. */
export async function writeSuppression(c: Sql, entries: readonly SuppressionEntry[]): Promise<number> {
  let n = 0;
  for (const e of entries) {
    const row = suppressionRow(e);
    n += (await c.query(upsertSql('$'), SUPPRESSION_ROW.map((k) => row[k]))).rowCount ?? 0;
  }
  return n;
}

export class PgSuppressionList implements SuppressionList {
  constructor(private readonly d: PgDb) {}

  async suppress(entries: readonly SuppressionEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    return this.d.tx('suppress', (c) => writeSuppression(c, entries));
  }

  async suppressed(addresses: readonly string[], now: number): Promise<Map<string, SuppressionEntry>> {
    if (addresses.length === 0) return new Map();
    const keys = [...new Set(addresses.map(suppressionKey))];
    const raws = await this.d.read<RawSuppression>('suppressed', `SELECT ${SUPPRESSION_COLUMNS} FROM suppressions WHERE key = ANY($1) AND until > $2`, [keys, now]);
    return new Map(raws.map((r) => [r.key, toSuppression(r)]));
  }

  async unsuppress(addresses: readonly string[]): Promise<number> {
    if (addresses.length === 0) return 0;
    return (await this.d.read('unsuppress', 'DELETE FROM suppressions WHERE key = ANY($1) RETURNING key', [[...new Set(addresses.map(suppressionKey))]])).length;
  }

  async listSuppressions(f: SuppressionFilter): Promise<SuppressionEntry[]> {
    const raws = await this.d.read<RawSuppression>('listSuppressions', `SELECT ${SUPPRESSION_COLUMNS} FROM suppressions
      WHERE ($1::text IS NULL OR strpos(key, $1) > 0) AND ($2::bigint IS NULL OR until > $2) ORDER BY key LIMIT $3`,
    [f.q ? f.q.toLowerCase() : null, f.now ?? null, f.limit ?? null]);
    return raws.map(toSuppression);
  }

  async purgeSuppressions(now: number): Promise<number> {
    return (await this.d.read('purgeSuppressions', 'DELETE FROM suppressions WHERE until <= $1 RETURNING key', [now])).length;
  }
}

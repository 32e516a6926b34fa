/**
 * queue/sqlite/suppression — the suppression list (queue/suppression) over the
 * SQLite queue: upserts by address key, lookups of many addresses at once,
 * removal, listing and the purge of expired entries. recordOutcomes writes
 * the entries a failure makes through `writeSuppression`, inside its own
 * transaction.
 *
 * Does not decide what suppresses (queue/suppression does).
 */
import { SUPPRESSION_COLUMNS, suppressionRow, toSuppression, type RawSuppression } from '../rows.js';
import { suppressionKey, upsertSql, type SuppressionEntry, type SuppressionFilter, type SuppressionList } from '../suppression.js';
import type { SqliteDb } from './db.js';

/** Writes entries; call it inside a write transaction. */
export function writeSuppression(d: SqliteDb, entries: readonly SuppressionEntry[]): number {
  if (entries.length === 0) return 0;
  const st = d.st(upsertSql('@'));
  let n = 0;
  for (const e of entries) n += st.run(suppressionRow(e)).changes;
  return n;
}

export class SqliteSuppressionList implements SuppressionList {
  constructor(private readonly d: SqliteDb) {}

  async suppress(entries: readonly SuppressionEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    return this.d.write('suppress', () => writeSuppression(this.d, entries));
  }

  async suppressed(addresses: readonly string[], now: number): Promise<Map<string, SuppressionEntry>> {
    if (addresses.length === 0) return new Map();
    const keys = [...new Set(addresses.map(suppressionKey))];
    const raws = this.d.st(`SELECT ${SUPPRESSION_COLUMNS} FROM suppressions WHERE key IN (SELECT value FROM json_each(?)) AND until > ?`)
      .all(JSON.stringify(keys), now) as RawSuppression[];
    return new Map(raws.map((r) => [r.key, toSuppression(r)]));
  }

  async unsuppress(addresses: readonly string[]): Promise<number> {
    if (addresses.length === 0) return 0;
    return this.d.write('unsuppress', () => this.d.st('DELETE FROM suppressions WHERE key IN (SELECT value FROM json_each(?))')
      .run(JSON.stringify([...new Set(addresses.map(suppressionKey))])).changes);
  }

  async listSuppressions(f: SuppressionFilter): Promise<SuppressionEntry[]> {
    const raws = this.d.st(`SELECT ${SUPPRESSION_COLUMNS} FROM suppressions
      WHERE (@q IS NULL OR instr(key, @q) > 0) AND (@now IS NULL OR until > @now) ORDER BY key LIMIT @limit`)
      .all({ q: f.q ? f.q.toLowerCase() : null, now: f.now ?? null, limit: f.limit ?? -1 }) as RawSuppression[];
    return raws.map(toSuppression);
  }

  async purgeSuppressions(now: number): Promise<number> {
    return this.d.write('purgeSuppressions', () => this.d.st('DELETE FROM suppressions WHERE until <= ?').run(now).changes);
  }
}

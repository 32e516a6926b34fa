/**
 * queue/shape-sql — SQL pieces the SQLite and PostgreSQL queues share so
 * both answer alike: the expression that puts a message's age into the
 * buckets of `queue shape` (RecipientQueue.shapeCounts), the LIKE
 * pattern of a search (QueueFilter.search), and the count of waiting
 * recipients per route key and tenant (RecipientQueue.tenantCounts). Builds
 * text only.
 */

/** `CASE WHEN age < b0 THEN 0 WHEN age < b1 THEN 1 … ELSE n END`; the bounds are checked integers (they become SQL text). */
export function ageBucketSql(ageExpr: string, boundsMs: readonly number[]): string {
  if (!boundsMs.every((b) => Number.isSafeInteger(b))) throw new RangeError('shape bounds must be integers (ms)');
  // Even with no bounds the age is named, so the statement's parameters are the same.
  if (boundsMs.length === 0) return `CASE WHEN ${ageExpr} IS NULL THEN 0 ELSE 0 END`;
  return `CASE ${boundsMs.map((b, i) => `WHEN ${ageExpr} < ${b} THEN ${i}`).join(' ')} ELSE ${boundsMs.length} END`;
}

/**
 * The lower-cased part of an address column after its last `@` ('' for the null sender, which has
 * none). SQLite has no "last index of": rtrim with every character but `@` strips back to the last `@`,
 * and the length of what is left is where the domain starts. PostgreSQL's regex is greedy to the last `@`.
 */
export function domainOfSql(dialect: 'sqlite' | 'pg', column: string): string {
  return dialect === 'sqlite'
    ? `lower(substr(${column}, length(rtrim(${column}, replace(${column}, '@', ''))) + 1))`
    : `lower(CASE WHEN position('@' in ${column}) > 0 THEN regexp_replace(${column}, '^.*@', '') ELSE '' END)`;
}

/** "a_b%" → "%a\_b\%%": a lower-case substring pattern, LIKE's wildcards in the text taken literally (ESCAPE '\'). */
export function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Non-final recipients that name a tenant, by route key and tenant, in byte order of both (columns destination, tenant, queued). */
export function tenantCountsSql(dialect: 'sqlite' | 'pg'): string {
  const c = dialect === 'pg' ? ' COLLATE "C"' : '';
  return `SELECT r.destination, r.tenant, COUNT(*)${dialect === 'pg' ? '::int' : ''} AS queued FROM recipients r
    WHERE r.state IN ('queued','inflight','deferred') AND r.tenant <> '' GROUP BY r.destination, r.tenant
    ORDER BY r.destination${c}, r.tenant${c}`;
}

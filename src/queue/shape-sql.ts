/**
 * queue/shape-sql — SQL pieces the SQLite and PostgreSQL queues share so
 * both answer alike: the expression that puts a message's age into the
 * buckets of `queue shape` (RecipientQueue.shapeCounts), and the LIKE
 * pattern of a search (QueueFilter.search). Builds text only.
 */

/** `CASE WHEN age < b0 THEN 0 WHEN age < b1 THEN 1 … ELSE n END`; the bounds are checked integers (they become SQL text). */
export function ageBucketSql(ageExpr: string, boundsMs: readonly number[]): string {
  if (!boundsMs.every((b) => Number.isSafeInteger(b))) throw new RangeError('shape bounds must be integers (ms)');
  // Even with no bounds the age is named, so the statement's parameters are the same.
  if (boundsMs.length === 0) return `CASE WHEN ${ageExpr} IS NULL THEN 0 ELSE 0 END`;
  return `CASE ${boundsMs.map((b, i) => `WHEN ${ageExpr} < ${b} THEN ${i}`).join(' ')} ELSE ${boundsMs.length} END`;
}

/** "a_b%" → "%a\_b\%%": a lower-case substring pattern, LIKE's wildcards in the text taken literally (ESCAPE '\'). */
export function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

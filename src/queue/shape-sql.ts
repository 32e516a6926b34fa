/**
 * queue/shape-sql — the SQL expression that puts a message's age into the
 * buckets of `queue shape` (RecipientQueue.shapeCounts), shared by the
 * SQLite and PostgreSQL queues so both bucket alike. Builds text only.
 */

/** `CASE WHEN age < b0 THEN 0 WHEN age < b1 THEN 1 … ELSE n END`; the bounds are checked integers (they become SQL text). */
export function ageBucketSql(ageExpr: string, boundsMs: readonly number[]): string {
  if (!boundsMs.every((b) => Number.isSafeInteger(b))) throw new RangeError('shape bounds must be integers (ms)');
  // Even with no bounds the age is named, so the statement's parameters are the same.
  if (boundsMs.length === 0) return `CASE WHEN ${ageExpr} IS NULL THEN 0 ELSE 0 END`;
  return `CASE ${boundsMs.map((b, i) => `WHEN ${ageExpr} < ${b} THEN ${i}`).join(' ')} ELSE ${boundsMs.length} END`;
}

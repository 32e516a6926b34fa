/**
 * queue/fair-claim — the claim of due recipients (RecipientQueue.claimDue),
 * as SQL text both queues run: fair between tenants within each destination.
 *
 * Each (destination, tenant) pair with waiting recipients is found by a loose
 * scan of the index recipients_fair (destination, tenant, next_attempt_at, id): one
 * index probe per pair, however many rows a tenant has queued. Each pair's
 * first due rows are read from the same index (up to `perPair`), then the
 * pairs of one destination take turns: every tenant's first message, then
 * every tenant's second, … (a round robin by message), at most
 * `perDestination` messages per destination, and the whole claim is ordered
 * by turn, then due time, then id. Messages without a tenant are one tenant
 * (''), so a single-tenant queue is claimed in due order as before.
 * A tenant's weight (`[tenants.NAME] weight`, `weightSql`) is how many of its
 * messages one turn holds: weight 3 takes three messages for each one of a
 * weight-1 tenant at a destination where both are due. Which tenant goes
 * first in a turn rotates (`rotation`, moved on by the scheduler at each
 * claim): when a destination has more due tenants than its share holds, the
 * tenants that sort last are not left out of every claim. The claim can leave
 * out (destination, tenant) pairs (`excluded`: a tenant over its rate or
 * suspended, destination/tenants).
 *
 * Builds text only; the stores bind the parameters and lease what it selects
 * (SQLite in its write transaction, PostgreSQL with FOR UPDATE SKIP LOCKED).
 * The one difference between dialects is how a pair's first rows are joined:
 * LATERAL on PostgreSQL, a rowid IN (…LIMIT) on SQLite (which has no LATERAL).
 * Does not decide how many to claim (the scheduler does).
 */
import { MAX_TENANT_WEIGHT } from '../config/schema.js';

/** The bound parameters, as each dialect spells them. */
export interface FairClaimParams {
  readonly now: string;
  /** Most rows read per (destination, tenant) pair. */
  readonly perPair: string;
  /** Most messages per destination. */
  readonly perDestination: string;
  readonly limit: string;
  /** A condition on `p.destination` and `p.tenant`: true when that pair is excluded from the claim. */
  readonly excluded: string;
  /** Each tenant's weight, an integer expression on `t.tenant` (`weightSql`); absent → 1 for every tenant. */
  readonly weight?: string;
  /** Which of a destination's tenants goes first in each turn (an integer ≥ 0, taken modulo their number); absent → 0. */
  readonly rotation?: string;
}

/**
 * The exclusion condition of a claim request for `fairClaimSql`, given how a dialect spells "the column is
 * among the list in parameter X": route keys, tenants anywhere, and (route key, tenant) pairs, the latter
 * as `routeKey || ' ' || tenant` (a route key has no space) — see `pairKeys`.
 */
export function excludedSql(among: (column: string, list: 'destinations' | 'tenants' | 'pairs') => string): string {
  return `${among('p.destination', 'destinations')} OR ${among('p.tenant', 'tenants')} OR ${among(`p.destination || ' ' || p.tenant`, 'pairs')}`;
}

/** The pairs of a claim request as `excludedSql` compares them. */
export const pairKeys = (pairs: readonly { readonly destination: string; readonly tenant: string }[] | undefined): string[] =>
  (pairs ?? []).map((x) => `${x.destination} ${x.tenant}`);


/**
 * `CASE t.tenant WHEN 'a' THEN 3 … ELSE 1 END` for the tenants whose weight is not 1; '1' when none. Names are
 * SQL string literals (quotes doubled), weights checked integers 1–MAX_TENANT_WEIGHT: both become statement text.
 */
export function weightSql(weights: ReadonlyMap<string, number>): string {
  const cases = [...weights].filter(([, w]) => w !== 1).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, w]) => {
    if (!Number.isInteger(w) || w < 1 || w > MAX_TENANT_WEIGHT) throw new RangeError(`tenant weight must be an integer 1–${MAX_TENANT_WEIGHT}`);
    return `WHEN '${name.replace(/'/g, "''")}' THEN ${w}`;
  });
  return cases.length === 0 ? '1' : `CASE t.tenant ${cases.join(' ')} ELSE 1 END`;
}

const DUE = `('queued','deferred')`;

/**
 * The selected rows' ids with their place in the claim (`slot`: the message's turn within its destination), in
 * claim order. Columns: id, slot, next_attempt_at.
 */
export function fairClaimSql(dialect: 'sqlite' | 'pg', p: FairClaimParams): string {
  // A pair's first due rows, of messages not held: read from recipients_fair in due order, stopping at perPair.
  // (The hold is a filter per row, not a join: so PostgreSQL too reads the index in order and stops, never the backlog.)
  const firstRows = `SELECT x.id FROM recipients x
      WHERE x.destination = p.destination AND x.tenant = p.tenant AND x.state IN ${DUE} AND x.next_attempt_at <= ${p.now}
        AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = x.message_id AND m.held <> 0)
      ORDER BY x.next_attempt_at, x.id LIMIT ${p.perPair}`;
  // The pair after p in index order: the next tenant of p's destination, or else the first of the next destination
  // (two probes of recipients_fair; a row value `>` would be walked through p's own rows on SQLite).
  const nextPair = `SELECT COALESCE(
        (SELECT x.id FROM recipients x WHERE x.state IN ${DUE} AND x.destination = p.destination AND x.tenant > p.tenant
          ORDER BY x.tenant LIMIT 1),
        (SELECT x.id FROM recipients x WHERE x.state IN ${DUE} AND x.destination > p.destination
          ORDER BY x.destination, x.tenant LIMIT 1)) AS id`;
  // The rows of recipients `alias` whose ids `ids` selects for each row of p.
  const rowsOf = (ids: string, alias: string): string => (dialect === 'pg'
    ? `CROSS JOIN LATERAL (${ids}) ${alias}_id JOIN recipients ${alias} ON ${alias}.id = ${alias}_id.id`
    : `JOIN recipients ${alias} ON ${alias}.id IN (${ids})`);
  return `WITH RECURSIVE pairs(destination, tenant) AS (
      SELECT f.destination, f.tenant FROM (SELECT x.destination, x.tenant FROM recipients x WHERE x.state IN ${DUE}
        ORDER BY x.destination, x.tenant LIMIT 1) f
      UNION ALL
      SELECT n.destination, n.tenant FROM pairs p ${rowsOf(nextPair, 'n')}),
    due AS (
      SELECT r.id, r.destination, r.tenant, r.message_id, r.next_attempt_at FROM pairs p
        LEFT JOIN destinations d ON d.key = p.destination ${rowsOf(firstRows, 'r')}
      WHERE (d.key IS NULL OR (d.health <> 'suspended' AND NOT (d.health = 'backoff' AND d.backoff_until > ${p.now})))
        AND NOT (${p.excluded})),
    turns AS (
      SELECT u.*, DENSE_RANK() OVER (PARTITION BY u.destination, u.tenant ORDER BY u.next_attempt_at, u.message_id) AS turn,
        DENSE_RANK() OVER (PARTITION BY u.destination ORDER BY u.tenant) - 1 AS trank FROM due u),
    ranked AS (
      SELECT t.*, MAX(t.trank) OVER (PARTITION BY t.destination) + 1 AS tcount FROM turns t),
    slots AS (
      SELECT t.*, DENSE_RANK() OVER (PARTITION BY t.destination
        ORDER BY (t.turn - 1) / (${p.weight ?? '1'}), (t.trank + ${p.rotation ?? '0'}) % t.tcount, t.turn) AS slot FROM ranked t)
    SELECT s.id, s.slot, s.next_attempt_at FROM slots s WHERE s.slot <= ${p.perDestination}
    ORDER BY s.slot, s.next_attempt_at, s.id LIMIT ${p.limit}`;
}

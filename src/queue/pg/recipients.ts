/**
 * queue/pg/recipients — RecipientQueue over the shared PostgreSQL queue.
 *
 * Claims select with `FOR UPDATE OF r SKIP LOCKED` and lease in the same
 * statement, so nodes claiming at once never get the same row and never
 * wait for each other's claims (I2). The state test of an outcome is in its
 * UPDATE (I1), and with an owner, the lease test too. The sweeps' claims use
 * report_owner/report_until, apart from the delivery lease, as on SQLite.
 * Outcomes are group-committed (pg/outcomes).
 */
import type pg from 'pg';
import type { AttemptRow, MessageId, MessageRow, RecipientOutcome, RecipientRow, RecipientState } from '../model.js';
import { FINAL_STATES } from '../model.js';
import { RemovalCandidates } from '../removal-candidates.js';
import type { PgDb } from './db.js';
import type { ClaimRequest, QueueCounts, QueueFilter, RecipientQueue, SenderShapeCount, ShapeCount, SweepClaim, TenantCount } from '../recipient-queue.js';
import { ageBucketSql, domainOfSql, likePattern, tenantCountsSql } from '../shape-sql.js';
import { excludedSql, fairClaimSql, pairKeys, weightSql } from '../fair-claim.js';
import { PgOutcomes } from './outcomes.js';
import {
  MESSAGE_COLUMNS, RECIPIENT_COLUMNS, toAttempt, toMessage, toRecipient, type RawAttempt, type RawMessage, type RawRecipient,
} from '../rows.js';

const FINAL_SQL = `(${FINAL_STATES.map((st) => `'${st}'`).join(',')})`;
const DUE_SQL = `('queued','deferred')`;
const RETURNING = RECIPIENT_COLUMNS.replace(/\br\./g, 'r.');
const byDue = (a: RecipientRow, b: RecipientRow): number => a.nextAttemptAt - b.nextAttemptAt || a.id - b.id;

type Raw = RawRecipient & Record<string, unknown>;

export class PgRecipientQueue implements RecipientQueue {
  private readonly candidates = new RemovalCandidates();
  /** recordOutcomes' group commit. */
  readonly outcomes: PgOutcomes;

  constructor(private readonly d: PgDb) {
    this.outcomes = new PgOutcomes(d);
  }

  async getRecipients(id: MessageId): Promise<RecipientRow[]> {
    return (await this.d.read<Raw>('getRecipients', `SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.message_id = $1 ORDER BY r.id`, [id])).map(toRecipient);
  }

  async getAttempts(id: MessageId): Promise<AttemptRow[]> {
    return (await this.d.read<RawAttempt & Record<string, unknown>>('getAttempts', `SELECT a.recipient_id, a.at, a.state, a.reply FROM attempts a
      JOIN recipients r ON r.id = a.recipient_id WHERE r.message_id = $1 ORDER BY a.at, a.id`, [id])).map(toAttempt);
  }

  async listMessages(f: QueueFilter): Promise<{ message: MessageRow; recipients: RecipientRow[] }[]> {
    const messages = (await this.d.read<RawMessage & Record<string, unknown>>('listMessages', `SELECT ${MESSAGE_COLUMNS} FROM messages m
      WHERE ($1::text IS NULL OR m.id = $1) AND ($2::bigint IS NULL OR m.received_at < $2)
        AND (($3::text IS NULL AND $4::text IS NULL) OR EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id
          AND ($3::text IS NULL OR r.domain = $3) AND ($4::text IS NULL OR r.state = $4)))
        AND ($6::text IS NULL OR lower(m.id) LIKE $6 ESCAPE '\\' OR lower(m.sender) LIKE $6 ESCAPE '\\'
          OR lower(m.header_message_id) LIKE $6 ESCAPE '\\'
          OR EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND lower(r.address) LIKE $6 ESCAPE '\\'))
      ORDER BY m.id LIMIT $5`, [f.messageId ?? null, f.olderThan ?? null, f.domain?.toLowerCase() ?? null, f.state ?? null, f.limit ?? null,
      f.search ? likePattern(f.search.text) : null])).map(toMessage);
    const byMessage = new Map<MessageId, RecipientRow[]>(messages.map((m) => [m.id, []]));
    if (messages.length > 0) {
      const raws = await this.d.read<Raw>('listMessages', `SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.message_id = ANY($1) ORDER BY r.id`, [[...byMessage.keys()]]);
      for (const raw of raws) byMessage.get(raw.message_id)?.push(toRecipient(raw));
    }
    return messages.map((message) => ({ message, recipients: byMessage.get(message.id) ?? [] }));
  }

  async counts(): Promise<QueueCounts> {
    const [{ n }] = await this.d.read<{ n: number }>('counts', 'SELECT COUNT(*)::bigint AS n FROM messages') as [{ n: number }];
    const byState: Record<RecipientState, number> = { queued: 0, inflight: 0, delivered: 0, deferred: 0, failed: 0, expired: 0 };
    for (const row of await this.d.read<{ state: RecipientState; n: number }>('counts', 'SELECT state, COUNT(*)::bigint AS n FROM recipients GROUP BY state')) byState[row.state] = row.n;
    return { messages: n, byState };
  }

  async shapeCounts(now: number, boundsMs: readonly number[]): Promise<ShapeCount[]> {
    const rows = await this.d.read<{ domain: string; destination: string; held: boolean; bucket: number; n: number }>('shapeCounts',
      `SELECT r.domain, r.destination, m.held, ${ageBucketSql('$1::bigint - m.received_at', boundsMs)} AS bucket, COUNT(*)::int AS n
        FROM recipients r JOIN messages m ON m.id = r.message_id
        WHERE r.state IN ('queued','inflight','deferred') GROUP BY 1, 2, 3, 4`, [now]);
    return rows.map((r) => ({ domain: r.domain, destination: r.destination, held: Boolean(r.held), bucket: Number(r.bucket), n: Number(r.n) }));
  }

  async senderShapeCounts(now: number, boundsMs: readonly number[]): Promise<SenderShapeCount[]> {
    const rows = await this.d.read<{ sender_domain: string; held: boolean; bucket: number; n: number }>('senderShapeCounts',
      `SELECT ${domainOfSql('pg', 'm.sender')} AS sender_domain, m.held, ${ageBucketSql('$1::bigint - m.received_at', boundsMs)} AS bucket, COUNT(*)::int AS n
        FROM messages m WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state IN ('queued','inflight','deferred'))
        GROUP BY 1, 2, 3`, [now]);
    return rows.map((r) => ({ senderDomain: r.sender_domain, held: Boolean(r.held), bucket: Number(r.bucket), n: Number(r.n) }));
  }

  async tenantCounts(): Promise<TenantCount[]> {
    return (await this.d.read<TenantCount>('tenantCounts', tenantCountsSql('pg'))).map((r) => ({ ...r, queued: Number(r.queued) }));
  }

  async nextDueAt(): Promise<number | undefined> {
    const [row] = await this.d.read<{ due: number | null }>('nextDueAt', `SELECT LEAST(
        (SELECT r.next_attempt_at FROM recipients r JOIN messages m ON m.id = r.message_id LEFT JOIN destinations d ON d.key = r.destination
          WHERE r.state IN ${DUE_SQL} AND m.held = 0
            AND (d.key IS NULL OR d.health = 'ok' OR (d.health = 'backoff' AND d.backoff_until <= r.next_attempt_at))
          ORDER BY r.next_attempt_at LIMIT 1),
        (SELECT MIN(d.backoff_until) FROM destinations d WHERE d.health = 'backoff'
          AND EXISTS (SELECT 1 FROM recipients r WHERE r.destination = d.key AND r.state IN ${DUE_SQL} AND r.next_attempt_at < d.backoff_until))
      ) AS due`);
    return row?.due ?? undefined;
  }

  private async lease(c: pg.PoolClient | undefined, what: string, select: string, params: unknown[], owner: string, until: number, now: number): Promise<RecipientRow[]> {
    const n = params.length;
    const sql = `WITH c AS (${select} FOR UPDATE OF r SKIP LOCKED)
      UPDATE recipients r SET state = 'inflight', lease_owner = $${n + 1}, lease_until = $${n + 2}, updated_at = $${n + 3}
      FROM c WHERE r.id = c.id RETURNING ${RETURNING}`;
    const args = [...params, owner, until, now];
    const raws = c ? (await c.query<Raw>(sql, args)).rows : await this.d.read<Raw>(what, sql, args);
    return raws.map(toRecipient).sort(byDue);
  }

  async claimDue(req: ClaimRequest): Promise<RecipientRow[]> {
    // The fair selection (queue/fair-claim) has window functions, which FOR UPDATE cannot take: it is a subquery,
    // and the rows it names are locked (SKIP LOCKED: another node's claim) and leased here, in claim order.
    const list = { destinations: '$2', tenants: '$7', pairs: '$8' } as const;
    const fair = fairClaimSql('pg', {
      now: '$1::bigint', perPair: '$10::int', perDestination: '$4::int', limit: '$3::int',
      excluded: excludedSql((column, l) => `${column} = ANY(${list[l]}::text[])`), weight: weightSql(new Map(Object.entries(req.weights ?? {}))),
      rotation: '$9::bigint',
    });
    const raws = await this.d.read<Raw & { slot: number }>('claimDue', `WITH f AS (${fair}),
        c AS (SELECT r.id, f.slot FROM recipients r JOIN f ON f.id = r.id WHERE r.state IN ${DUE_SQL} FOR UPDATE OF r SKIP LOCKED)
      UPDATE recipients r SET state = 'inflight', lease_owner = $5, lease_until = $6, updated_at = $1
      FROM c WHERE r.id = c.id RETURNING ${RETURNING}, c.slot`,
    [req.now, [...(req.excludeDestinations ?? [])], req.limit, req.perDestination ?? 2147483647, req.owner, req.leaseUntil,
      [...(req.excludeTenants ?? [])], pairKeys(req.excludePairs), req.rotation ?? 0, Math.min(req.limit, req.pairRows ?? req.limit)]);
    return raws.sort((a, b) => a.slot - b.slot || a.next_attempt_at - b.next_attempt_at || a.id - b.id).map(toRecipient);
  }

  async renewLeases(ids: readonly number[], owner: string, leaseUntil: number): Promise<number[]> {
    return (await this.d.read<{ id: number }>('renewLeases', `UPDATE recipients SET lease_until = $1
      WHERE id = ANY($2) AND state = 'inflight' AND lease_owner = $3 RETURNING id`, [leaseUntil, [...ids], owner])).map((r) => r.id).sort((a, b) => a - b);
  }

  async unclaim(ids: readonly number[], owner: string, nextAttemptAt: number): Promise<number> {
    return (await this.d.read('unclaim', `UPDATE recipients SET
        state = CASE WHEN attempts > 0 OR last_reply IS NOT NULL THEN 'deferred' ELSE 'queued' END,
        lease_owner = NULL, lease_until = NULL, next_attempt_at = $1, updated_at = $2
      WHERE id = ANY($3) AND state = 'inflight' AND lease_owner = $4 RETURNING id`, [nextAttemptAt, this.d.clock(), [...ids], owner])).length;
  }

  private async release(what: string, condition: string, params: unknown[]): Promise<number> {
    return (await this.d.read(what, `UPDATE recipients SET
        state = CASE WHEN attempts > 0 OR last_reply IS NOT NULL THEN 'deferred' ELSE 'queued' END,
        lease_owner = NULL, lease_until = NULL, next_attempt_at = LEAST(next_attempt_at, $1), updated_at = $1
      WHERE state = 'inflight' ${condition} RETURNING id`, params)).length;
  }

  releaseExpiredLeases(now: number): Promise<number> {
    return this.release('releaseExpiredLeases', 'AND lease_until <= $1', [now]);
  }

  releaseNodeLeases(owner: string, now: number): Promise<number> {
    return this.release('releaseNodeLeases', 'AND lease_owner = $2', [now, owner]);
  }

  async recordOutcomes(outcomes: readonly RecipientOutcome[], now: number, owner: string): Promise<number[]> {
    if (outcomes.length === 0) return [];
    const { applied, finished } = await this.outcomes.record(outcomes, now, owner);
    // Candidates for removal are noted after the commit: a removeCompleted running meanwhile must not see
    // the message before its last outcome is visible, and drop it as not yet complete.
    for (const mid of finished) this.candidates.touch(mid);
    return applied;
  }

  async parkDestination(key: string, until: number, limit?: number): Promise<number> {
    return (await this.d.read('parkDestination', `UPDATE recipients SET next_attempt_at = $2
      WHERE id IN (SELECT id FROM recipients WHERE destination = $1 AND state IN ${DUE_SQL} AND next_attempt_at < $2 LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING id`, [key, until, limit ?? null])).length;
  }

  async flush(o: { domain?: string; messageId?: MessageId; destination?: string; now: number }): Promise<number> {
    return (await this.d.read('flush', `UPDATE recipients SET next_attempt_at = $1, updated_at = $1
      WHERE state IN ${DUE_SQL} AND next_attempt_at > $1 AND ($2::text IS NULL OR domain = $2) AND ($3::text IS NULL OR message_id = $3)
        AND ($4::text IS NULL OR destination = $4) RETURNING id`, [o.now, o.domain?.toLowerCase() ?? null, o.messageId ?? null, o.destination ?? null])).length;
  }

  async setHeld(id: MessageId, held: boolean): Promise<boolean> {
    return (await this.d.read('setHeld', 'UPDATE messages SET held = $1 WHERE id = $2 RETURNING id', [held ? 1 : 0, id])).length > 0;
  }

  claimExpirable(receivedBefore: number, c: SweepClaim): Promise<RecipientRow[]> {
    return this.lease(undefined, 'claimExpirable', `SELECT r.id FROM messages m JOIN recipients r ON r.message_id = m.id
      WHERE m.received_at < $1 AND r.state IN ${DUE_SQL} LIMIT $2`, [receivedBefore, c.limit], c.owner, c.leaseUntil, c.now);
  }

  claimWaiting(id: MessageId, c: Omit<SweepClaim, 'limit'>): Promise<RecipientRow[]> {
    return this.lease(undefined, 'claimWaiting', `SELECT r.id FROM recipients r WHERE r.message_id = $1 AND r.state IN ${DUE_SQL}`,
      [id], c.owner, c.leaseUntil, c.now);
  }

  claimDelayed(receivedBefore: number, c: SweepClaim): Promise<RecipientRow[]> {
    return this.claimWhole('claimDelayed', `r.state = 'deferred' AND r.delay_notified = 0`, receivedBefore, c);
  }

  claimReportsDue(c: SweepClaim): Promise<RecipientRow[]> {
    return this.claimWhole('claimReportsDue', `r.dsn_done = 0 AND (r.state IN ('failed', 'expired') OR (r.state = 'delivered' AND r.notify LIKE '%SUCCESS%'))`, undefined, c);
  }

  /**
   * The sweeps' report claims (failure/success DSNs, delay warnings): the recipients `owed` a report, by whole
   * messages (received before `receivedBefore`, when given), `limit` messages at most.
   */
  private async claimWhole(what: string, owed: string, receivedBefore: number | undefined, c: SweepClaim): Promise<RecipientRow[]> {
    // No recipient of the message in an attempt (its outcome belongs in the same report) or under a live report claim.
    const QUIET = `NOT EXISTS (SELECT 1 FROM recipients o WHERE o.message_id = r.message_id AND (o.state = 'inflight' OR o.report_until > $1))`;
    // Most passes find nothing owed: one look (an index probe, no transaction) before BEGIN, SELECT … FOR UPDATE, COMMIT.
    // A recipient owed a moment after it is claimed by the next pass, as when the locking SELECT finds none.
    const owedAny = await this.d.read<{ x: number }>(what, `SELECT 1 AS x FROM recipients r WHERE ${owed} AND (r.report_until IS NULL OR r.report_until <= $1) LIMIT 1`, [c.now]);
    if (owedAny.length === 0) return [];
    const raws = await this.d.tx(what, async (t) => {
      // Whole messages, each locked while it is claimed: a node claiming at the same moment skips it, so one
      // message's report is never split between two nodes (row locks alone let SKIP LOCKED split it).
      const ids = (await t.query<{ id: string }>(`SELECT m.id FROM messages m WHERE ($3::bigint IS NULL OR m.received_at < $3) AND m.id IN (
          SELECT r.message_id FROM recipients r WHERE ${owed} AND (r.report_until IS NULL OR r.report_until <= $1) AND ${QUIET})
        ORDER BY m.id LIMIT $2 FOR NO KEY UPDATE OF m SKIP LOCKED`, [c.now, c.limit, receivedBefore ?? null])).rows.map((r) => r.id);
      if (ids.length === 0) return [];
      // A new statement sees (READ COMMITTED) what a node that held a message's lock before us committed: its claim.
      return (await t.query<Raw>(`UPDATE recipients r SET report_owner = $2, report_until = $3
        WHERE r.message_id = ANY($4) AND ${owed} AND (r.report_until IS NULL OR r.report_until <= $1) AND ${QUIET}
        RETURNING ${RETURNING}`, [c.now, c.owner, c.leaseUntil, ids])).rows;
    });
    return raws.map(toRecipient).sort((a, b) => (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : a.id - b.id));
  }

  async markDsn(recipientIds: readonly number[], what: 'final' | 'delay'): Promise<void> {
    const column = what === 'final' ? 'dsn_done' : 'delay_notified';
    const rows = await this.d.read<{ message_id: string }>('markDsn', `UPDATE recipients SET ${column} = 1, report_owner = NULL, report_until = NULL, updated_at = $1
      WHERE id = ANY($2) RETURNING message_id`, [this.d.clock(), [...recipientIds]]);
    for (const r of rows) this.candidates.touch(r.message_id);
  }

  async removeCompleted(limit: number): Promise<MessageId[]> {
    const now = this.d.clock();
    const plan = this.candidates.plan(limit, now);
    let candidates: MessageId[];
    if (plan.kind === 'touched') candidates = plan.ids;
    else {
      // At start and every RESCAN_MS, everything, a slice per call: messages finished while no node ran,
      // or by a node that died before removing them.
      candidates = (await this.d.read<{ id: string }>('removeCompleted', 'SELECT id FROM messages WHERE id > $2 ORDER BY id LIMIT $1', [plan.limit, plan.after])).map((r) => r.id);
      this.candidates.scanned(candidates, plan.limit, now);
    }
    if (candidates.length === 0) return [];
    const rows = await this.d.read<{ id: string }>('removeCompleted', `DELETE FROM messages m WHERE m.id = ANY($1) AND NOT EXISTS (
        SELECT 1 FROM recipients r WHERE r.message_id = m.id AND (r.state NOT IN ${FINAL_SQL} OR (r.state <> 'delivered' AND r.dsn_done = 0)))
      RETURNING m.id`, [candidates]);
    return rows.map((r) => r.id).sort();
  }
}

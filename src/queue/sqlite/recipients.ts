/**
 * queue/sqlite/recipients — RecipientQueue over the SQLite queue: claims and
 * their leases, outcomes with their history, flush/hold, the sweeps' claims,
 * and removal of finished messages.
 *
 * Each write is one IMMEDIATE transaction (sqlite/db), so claims from two
 * processes on one file never overlap (I2), and the state test of an outcome
 * is in its UPDATE (I1: a final state never changes). Report and delay claims
 * use report_owner/report_until, apart from the delivery lease, so a report
 * being written never blocks (or is undone by) a delivery claim.
 */
import { bounceEntry } from '../suppression.js';
import { writeSuppression } from './suppression.js';
import type {
  AttemptRow, MessageId, MessageRow, Outcome, RecipientOutcome, RecipientRow, RecipientState,
} from '../model.js';
import { FINAL_STATES } from '../model.js';
import { RemovalCandidates } from '../removal-candidates.js';
import type { ClaimRequest, QueueCounts, QueueFilter, RecipientQueue, SenderShapeCount, ShapeCount, SweepClaim, TenantCount } from '../recipient-queue.js';
import { ageBucketSql, domainOfSql, likePattern, tenantCountsSql } from '../shape-sql.js';
import { excludedSql, fairClaimSql, pairKeys, weightSql } from '../fair-claim.js';
import type { SqliteDb } from './db.js';
import { OutcomeEvents, type ChangedRecipient } from '../event.js';
import { insertOutbox, messageFacts } from './events.js';
import {
  MESSAGE_COLUMNS, RECIPIENT_COLUMNS, toAttempt, toMessage, toRecipient,
  type RawAttempt, type RawMessage, type RawRecipient,
} from '../rows.js';

/** The final states of queue/model, as an SQL list. */
export const FINAL_SQL = `(${FINAL_STATES.map((st) => `'${st}'`).join(',')})`;
export const DUE_STATES_SQL = `('queued','deferred')`;
/** A recipient whose destination row is absent is claimable; 'suspended' never is. */
const DEST_OPEN_SQL =
  `(d.key IS NULL OR (d.health <> 'suspended' AND NOT (d.health = 'backoff' AND d.backoff_until > @now)))`;
/** No report claim, or one that ran out (its node died mid-report). */
const REPORT_FREE_SQL = '(r.report_until IS NULL OR r.report_until <= @now)';

/** Attempts an outcome adds to a recipient's count: expiry and uncounted deferrals are not tries. */
function attemptIncrement(o: Outcome): number {
  switch (o.kind) {
    case 'delivered': return 1;
    case 'failed': return 1;
    case 'expired': return 0;
    case 'deferred': return o.countAttempt ? 1 : 0;
  }
}

export class SqliteRecipientQueue implements RecipientQueue {
  /** Messages whose recipients changed since the last removeCompleted, and the periodic scan of all. */
  private readonly candidates = new RemovalCandidates();

  constructor(private readonly d: SqliteDb) {}

  // ---- reads ----

  async getRecipients(id: MessageId): Promise<RecipientRow[]> {
    const raws = this.d.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.message_id = ? ORDER BY r.id`).all(id) as RawRecipient[];
    return raws.map(toRecipient);
  }

  async getAttempts(id: MessageId): Promise<AttemptRow[]> {
    const raws = this.d.st(`SELECT a.recipient_id, a.at, a.state, a.reply FROM attempts a
      JOIN recipients r ON r.id = a.recipient_id WHERE r.message_id = ? ORDER BY a.at, a.rowid`).all(id) as RawAttempt[];
    return raws.map(toAttempt);
  }

  async listMessages(filter: QueueFilter): Promise<{ message: MessageRow; recipients: RecipientRow[] }[]> {
    const params = {
      mid: filter.messageId ?? null,
      older: filter.olderThan ?? null,
      domain: filter.domain !== undefined ? filter.domain.toLowerCase() : null,
      state: filter.state ?? null,
      limit: filter.limit ?? -1, // -1: no limit in SQLite
      pat: filter.search ? likePattern(filter.search.text) : null,
    };
    const messages = (this.d.st(`SELECT ${MESSAGE_COLUMNS} FROM messages m
      WHERE (@mid IS NULL OR m.id = @mid) AND (@older IS NULL OR m.received_at < @older)
        AND ((@domain IS NULL AND @state IS NULL) OR EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id
          AND (@domain IS NULL OR r.domain = @domain) AND (@state IS NULL OR r.state = @state)))
        AND (@pat IS NULL OR lower(m.id) LIKE @pat ESCAPE '\\' OR lower(m.sender) LIKE @pat ESCAPE '\\'
          OR lower(m.header_message_id) LIKE @pat ESCAPE '\\'
          OR EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND lower(r.address) LIKE @pat ESCAPE '\\'))
      ORDER BY m.id LIMIT @limit`).all(params) as RawMessage[]).map(toMessage);
    const byMessage = new Map<MessageId, RecipientRow[]>(messages.map((m) => [m.id, []]));
    const raws = this.d.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r
      WHERE r.message_id IN (SELECT value FROM json_each(?)) ORDER BY r.id`).all(JSON.stringify([...byMessage.keys()])) as RawRecipient[];
    for (const raw of raws) byMessage.get(raw.message_id)?.push(toRecipient(raw));
    return messages.map((message) => ({ message, recipients: byMessage.get(message.id) ?? [] }));
  }

  async counts(): Promise<QueueCounts> {
    const { n } = this.d.st('SELECT COUNT(*) AS n FROM messages').get() as { n: number };
    const byState: Record<RecipientState, number> = { queued: 0, inflight: 0, delivered: 0, deferred: 0, failed: 0, expired: 0 };
    for (const row of this.d.st('SELECT state, COUNT(*) AS n FROM recipients GROUP BY state').all() as { state: RecipientState; n: number }[]) {
      byState[row.state] = row.n;
    }
    return { messages: n, byState };
  }

  async shapeCounts(now: number, boundsMs: readonly number[]): Promise<ShapeCount[]> {
    const rows = this.d.st(`SELECT r.domain, r.destination, m.held, ${ageBucketSql('@now - m.received_at', boundsMs)} AS bucket, COUNT(*) AS n
      FROM recipients r JOIN messages m ON m.id = r.message_id
      WHERE r.state IN ('queued','inflight','deferred') GROUP BY 1, 2, 3, 4`).all({ now }) as { domain: string; destination: string; held: number; bucket: number; n: number }[];
    return rows.map((r) => ({ domain: r.domain, destination: r.destination, held: r.held !== 0, bucket: r.bucket, n: r.n }));
  }

  async senderShapeCounts(now: number, boundsMs: readonly number[]): Promise<SenderShapeCount[]> {
    const rows = this.d.st(`SELECT ${domainOfSql('sqlite', 'm.sender')} AS sender_domain, m.held, ${ageBucketSql('@now - m.received_at', boundsMs)} AS bucket, COUNT(*) AS n
      FROM messages m WHERE EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.state IN ('queued','inflight','deferred'))
      GROUP BY 1, 2, 3`).all({ now }) as { sender_domain: string; held: number; bucket: number; n: number }[];
    return rows.map((r) => ({ senderDomain: r.sender_domain, held: r.held !== 0, bucket: r.bucket, n: r.n }));
  }

  async tenantCounts(): Promise<TenantCount[]> {
    return this.d.st(tenantCountsSql('sqlite')).all() as TenantCount[];
  }

  async nextDueAt(): Promise<number | undefined> {
    // Two cheap answers instead of one scan: the first pending row (in index order) that nothing blocks,
    // and the end of the earliest backoff that has rows waiting. A parked destination's rows already carry
    // its backoff end (parkDestination), so the first query rarely walks past them.
    const row = this.d.st(`SELECT MIN(due) AS due FROM (
        SELECT (SELECT r.next_attempt_at FROM recipients r JOIN messages m ON m.id = r.message_id
            LEFT JOIN destinations d ON d.key = r.destination
          WHERE r.state IN ${DUE_STATES_SQL} AND m.held = 0
            AND (d.key IS NULL OR d.health = 'ok' OR (d.health = 'backoff' AND d.backoff_until <= r.next_attempt_at))
          ORDER BY r.next_attempt_at LIMIT 1) AS due
        UNION ALL
        SELECT MIN(d.backoff_until) FROM destinations d WHERE d.health = 'backoff'
          AND EXISTS (SELECT 1 FROM recipients r WHERE r.destination = d.key AND r.state IN ${DUE_STATES_SQL}
            AND r.next_attempt_at < d.backoff_until))`).get() as { due: number | null };
    return row.due ?? undefined;
  }

  // ---- claims and leases ----

  async claimDue(req: ClaimRequest): Promise<RecipientRow[]> {
    return this.d.write('claimDue', () => {
      const ids = this.d.st(fairClaimSql('sqlite', {
        now: '@now', perPair: '@limit', perDestination: '@per', limit: '@limit',
        excluded: excludedSql((column, list) => `${column} IN (SELECT value FROM json_each(@${list}))`), weight: weightSql(new Map(Object.entries(req.weights ?? {}))),
        rotation: '@rotation',
      })).pluck().all({
        now: req.now, destinations: JSON.stringify(req.excludeDestinations ?? []), limit: req.limit, per: req.perDestination ?? 2147483647,
        tenants: JSON.stringify(req.excludeTenants ?? []), pairs: JSON.stringify(pairKeys(req.excludePairs)), rotation: req.rotation ?? 0,
      }) as number[];
      const row = this.d.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.id = ?`);
      return this.lease(ids.map((id) => row.get(id) as RawRecipient), req.owner, req.leaseUntil, req.now);
    });
  }

  private lease(raws: readonly RawRecipient[], owner: string, leaseUntil: number, now: number): RecipientRow[] {
    const lease = this.d.st(`UPDATE recipients SET state = 'inflight', lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ?`);
    for (const raw of raws) lease.run(owner, leaseUntil, now, raw.id);
    return raws.map((raw) => ({ ...toRecipient(raw), state: 'inflight' as const, updatedAt: now }));
  }

  async renewLeases(ids: readonly number[], owner: string, leaseUntil: number): Promise<number[]> {
    return this.d.write('renewLeases', () => {
      const renew = this.d.st(`UPDATE recipients SET lease_until = ? WHERE id = ? AND state = 'inflight' AND lease_owner = ? RETURNING id`).pluck();
      return ids.filter((id) => renew.get(leaseUntil, id, owner) !== undefined);
    });
  }

  async unclaim(ids: readonly number[], owner: string, nextAttemptAt: number): Promise<number> {
    return this.d.write('unclaim', () => {
      const give = this.d.st(`UPDATE recipients SET
          state = CASE WHEN attempts > 0 OR last_reply IS NOT NULL THEN 'deferred' ELSE 'queued' END,
          lease_owner = NULL, lease_until = NULL, next_attempt_at = @next, updated_at = @now
        WHERE id = @id AND state = 'inflight' AND lease_owner = @owner`);
      const now = this.d.clock();
      let n = 0;
      for (const id of ids) n += give.run({ id, owner, next: nextAttemptAt, now }).changes;
      return n;
    });
  }

  async releaseExpiredLeases(now: number): Promise<number> {
    return this.d.write('releaseExpiredLeases', () => this.release({ now }, 'AND lease_until <= @now'));
  }

  async releaseNodeLeases(owner: string, now: number): Promise<number> {
    return this.d.write('releaseNodeLeases', () => this.release({ now, owner }, 'AND lease_owner = @owner'));
  }

  /** Back to due: 'deferred' if it was ever tried, else 'queued'; never earlier than it was due. */
  private release(params: { now: number; owner?: string }, condition: string): number {
    return this.d.st(`UPDATE recipients SET
        state = CASE WHEN attempts > 0 OR last_reply IS NOT NULL THEN 'deferred' ELSE 'queued' END,
        lease_owner = NULL, lease_until = NULL, next_attempt_at = MIN(next_attempt_at, @now), updated_at = @now
      WHERE state = 'inflight' ${condition}`).run(params).changes;
  }

  // ---- outcomes ----

  async recordOutcomes(outcomes: readonly RecipientOutcome[], now: number, owner: string): Promise<number[]> {
    if (outcomes.length === 0) return [];
    return this.d.write('recordOutcomes', () => {
      // One statement per outcome: the state and lease test is in the UPDATE itself (I1: a final state never
      // changes; a deleted recipient matches nothing; a row not claimed by `owner`, or whose lease went to
      // another owner, is not overwritten), and RETURNING says which message may now be complete.
      const update = this.d.st(`UPDATE recipients SET state = @state, last_reply = @reply, attempts = attempts + @inc,
          next_attempt_at = COALESCE(@next, next_attempt_at), lease_owner = NULL, lease_until = NULL, updated_at = @now
        WHERE id = @id AND state = 'inflight' AND lease_owner = @owner
        RETURNING message_id, address, domain, destination, attempts`);
      const history = this.d.st('INSERT INTO attempts (recipient_id, at, state, reply) VALUES (?, ?, ?, ?)');
      const events = new OutcomeEvents(this.d.events, now);
      const applied: number[] = [];
      for (const { recipientId, outcome, rule } of outcomes) {
        const reply = JSON.stringify(outcome.reply);
        const row = update.get({
          id: recipientId, state: outcome.kind, reply, inc: attemptIncrement(outcome), now, owner,
          next: outcome.kind === 'deferred' ? outcome.nextAttemptAt : null,
        }) as ChangedRecipient | undefined;
        if (row === undefined) {
          this.d.stats.ignoredOutcomes++;
          continue;
        }
        applied.push(recipientId);
        if (outcome.kind !== 'deferred') this.candidates.touch(row.message_id);
        history.run(recipientId, now, outcome.kind, reply);
        events.add(row, outcome, rule);
        const entry = bounceEntry(row, outcome, now);
        if (entry) writeSuppression(this.d, [entry]);
      }
      insertOutbox(this.d, events.rows(messageFacts(this.d, events.messageIds())), now);
      return applied;
    });
  }

  async parkDestination(key: string, until: number, limit = -1): Promise<number> {
    return this.d.write('parkDestination', () => this.d.st(`UPDATE recipients SET next_attempt_at = @until
      WHERE id IN (SELECT id FROM recipients WHERE destination = @key AND state IN ${DUE_STATES_SQL}
        AND next_attempt_at < @until LIMIT @limit)`).run({ key, until, limit }).changes);
  }

  async flush(opts: { domain?: string; messageId?: MessageId; destination?: string; now: number }): Promise<number> {
    return this.d.write('flush', () => this.d.st(`UPDATE recipients SET next_attempt_at = @now, updated_at = @now
      WHERE state IN ${DUE_STATES_SQL} AND next_attempt_at > @now
        AND (@domain IS NULL OR domain = @domain) AND (@mid IS NULL OR message_id = @mid)
        AND (@dest IS NULL OR destination = @dest)`)
      .run({ now: opts.now, domain: opts.domain?.toLowerCase() ?? null, mid: opts.messageId ?? null, dest: opts.destination ?? null }).changes);
  }

  async setHeld(id: MessageId, held: boolean): Promise<boolean> {
    return this.d.write('setHeld', () => this.d.st('UPDATE messages SET held = ? WHERE id = ?').run(held ? 1 : 0, id).changes > 0);
  }

  // ---- the sweeps' claims ----

  async claimExpirable(receivedBefore: number, c: SweepClaim): Promise<RecipientRow[]> {
    return this.d.write('claimExpirable', () => {
      // CROSS JOIN keeps messages (by the received_at index) as the outer loop: old messages are few.
      const raws = this.d.st(`SELECT ${RECIPIENT_COLUMNS} FROM messages m CROSS JOIN recipients r ON r.message_id = m.id
        WHERE m.received_at < @before AND r.state IN ${DUE_STATES_SQL} LIMIT @limit`)
        .all({ before: receivedBefore, limit: c.limit }) as RawRecipient[];
      return this.lease(raws, c.owner, c.leaseUntil, c.now);
    });
  }

  async claimWaiting(id: MessageId, c: Omit<SweepClaim, 'limit'>): Promise<RecipientRow[]> {
    return this.d.write('claimWaiting', () => {
      const raws = this.d.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.message_id = ? AND r.state IN ${DUE_STATES_SQL} ORDER BY r.id`)
        .all(id) as RawRecipient[];
      return this.lease(raws, c.owner, c.leaseUntil, c.now);
    });
  }

  async claimDelayed(receivedBefore: number, c: SweepClaim): Promise<RecipientRow[]> {
    return this.d.write('claimDelayed', () => {
      // Whole messages (`limit` of them), as claimReportsDue: one message's warning is never split between two claims,
      // and none while one of its recipients is in an attempt (a deferral then belongs in the same warning).
      // CROSS JOIN keeps messages (by the received_at index) as the outer loop: old messages are few.
      const ids = this.d.st(`SELECT DISTINCT m.id FROM messages m CROSS JOIN recipients r ON r.message_id = m.id
        WHERE m.received_at < @before AND r.state = 'deferred' AND r.delay_notified = 0 AND ${REPORT_FREE_SQL}
          AND NOT EXISTS (SELECT 1 FROM recipients o WHERE o.message_id = m.id AND (o.state = 'inflight' OR o.report_until > @now))
        LIMIT @limit`).pluck().all({ before: receivedBefore, limit: c.limit, now: c.now }) as MessageId[];
      const owed = this.d.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.message_id = ?
        AND r.state = 'deferred' AND r.delay_notified = 0 ORDER BY r.id`);
      return this.claimReports(ids.flatMap((id) => owed.all(id) as RawRecipient[]), c);
    });
  }

  async claimReportsDue(c: SweepClaim): Promise<RecipientRow[]> {
    return this.d.write('claimReportsDue', () => {
      // Whole messages (`limit` of them): all of a message's owed reports in one claim, and none while one of its
      // recipients is in an attempt (its outcome belongs in the same report) or under another claim.
      const ids = this.d.st(`SELECT DISTINCT r.message_id FROM recipients r
        -- The same condition as the partial index recipients_reports, word for word, so SQLite uses it.
        WHERE dsn_done = 0 AND (state IN ('failed', 'expired') OR (state = 'delivered' AND notify LIKE '%SUCCESS%'))
          AND ${REPORT_FREE_SQL} AND NOT EXISTS (SELECT 1 FROM recipients o WHERE o.message_id = r.message_id
            AND (o.state = 'inflight' OR o.report_until > @now))
        ORDER BY r.message_id LIMIT @limit`).pluck().all({ limit: c.limit, now: c.now }) as MessageId[];
      const owed = this.d.st(`SELECT ${RECIPIENT_COLUMNS} FROM recipients r WHERE r.message_id = ?
        AND r.dsn_done = 0 AND (r.state IN ('failed', 'expired') OR (r.state = 'delivered' AND r.notify LIKE '%SUCCESS%')) ORDER BY r.id`);
      return this.claimReports(ids.flatMap((id) => owed.all(id) as RawRecipient[]), c);
    });
  }

  private claimReports(raws: readonly RawRecipient[], c: SweepClaim): RecipientRow[] {
    const claim = this.d.st('UPDATE recipients SET report_owner = ?, report_until = ? WHERE id = ?');
    for (const raw of raws) claim.run(c.owner, c.leaseUntil, raw.id);
    return raws.map(toRecipient);
  }

  async markDsn(recipientIds: readonly number[], what: 'final' | 'delay'): Promise<void> {
    const column = what === 'final' ? 'dsn_done' : 'delay_notified';
    this.d.write('markDsn', () => {
      const mark = this.d.st(`UPDATE recipients SET ${column} = 1, report_owner = NULL, report_until = NULL, updated_at = ?
        WHERE id = ? RETURNING message_id`).pluck();
      const now = this.d.clock();
      for (const id of recipientIds) {
        const mid = mark.get(now, id) as MessageId | undefined;
        if (mid !== undefined) this.candidates.touch(mid);
      }
    });
  }

  async removeCompleted(limit: number): Promise<MessageId[]> {
    return this.d.write('removeCompleted', () => {
      // Messages touched since the last call (so this stays O(what changed) on every scheduler pass), and at
      // start and every RESCAN_MS, everything, a slice per call (finished by a node that died before removing).
      const now = this.d.clock();
      const plan = this.candidates.plan(limit, now);
      let candidates: MessageId[];
      if (plan.kind === 'touched') candidates = plan.ids;
      else {
        candidates = this.d.st('SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?').pluck().all(plan.after, plan.limit) as MessageId[];
        this.candidates.scanned(candidates, plan.limit, now);
      }
      const complete = this.d.st(`SELECT 1 FROM messages m WHERE m.id = ? AND NOT EXISTS (SELECT 1 FROM recipients r
          WHERE r.message_id = m.id AND (r.state NOT IN ${FINAL_SQL} OR (r.state <> 'delivered' AND r.dsn_done = 0)))`).pluck();
      const del = this.d.st('DELETE FROM messages WHERE id = ?');
      // At most `limit` candidates (plan and slice are bounded by it), so at most `limit` removed.
      const ids: MessageId[] = [];
      for (const id of candidates) {
        if (complete.get(id) !== undefined) {
          del.run(id);
          ids.push(id);
        }
      }
      return ids;
    });
  }
}

/**
 * queue/pg/outcomes — RecipientQueue.recordOutcomes' writes on the shared
 * PostgreSQL queue, group-committed (queue/group-commit, as enqueues are):
 * the calls made in one event-loop turn, and those made while
 * WRITES_IN_FLIGHT batches are being committed, go in one statement — one
 * commit for all of them — and each call resolves (with the ids it applied)
 * only after that commit, durable under synchronous_commit = on.
 *
 * A batch is one statement when no event sink is set and no failure in it
 * may suppress its address (the UPDATE, its state and lease tests (I1, I2)
 * and the attempts INSERT as data-modifying CTEs); otherwise one transaction
 * with the suppression and outbox rows. Each row carries its call's `now`
 * and owner. A recipient named by two calls of a batch: the first call's
 * outcome counts (the second would have found it no longer in flight).
 * A batch that fails on a live connection (an error of its rows: nothing of
 * it was stored) is written again one call per statement, so one call's bad
 * row fails that call only; a lost connection fails every call of the batch
 * (a commit whose answer was lost must not be written twice).
 *
 * Does not decide outcomes (scheduler/outcome) nor remove messages
 * (pg/recipients notes the finished ones for removeCompleted).
 */
import { HalcyonError } from '../../errors.js';
import { bounceEntry, type SuppressionEntry } from '../suppression.js';
import { writeSuppression } from './suppression.js';
import type { MessageId, Outcome, RecipientOutcome } from '../model.js';
import { retryable, WRITES_IN_FLIGHT, type PgDb, type Sql } from './db.js';
import { GroupCommit, type Entry } from '../group-commit.js';
import { OutcomeEvents, type ChangedRecipient } from '../event.js';
import { insertOutbox, messageFacts } from './events.js';

/** Calls in one batch at most. */
const BATCH_MAX_CALLS = 256;

/** One recordOutcomes call as a group-commit item; `applied` and `finished` are filled by the write that commits it. */
interface OutcomeCall {
  readonly list: readonly RecipientOutcome[];
  readonly now: number;
  readonly owner: string;
  applied: number[];
  /** Messages of the outcomes applied that are not deferrals (candidates for removal once committed). */
  finished: MessageId[];
}

/** One row of a batch's statement: an outcome and the call it came from. */
interface Row {
  readonly o: RecipientOutcome;
  readonly call: OutcomeCall;
}

function increment(o: Outcome): number {
  switch (o.kind) {
    case 'delivered': return 1;
    case 'failed': return 1;
    case 'expired': return 0;
    case 'deferred': return o.countAttempt ? 1 : 0;
  }
}

/**
 * One statement for a batch of outcomes: each UPDATE tests state and lease (I1), and the attempt rows of those
 * that applied are inserted by the same statement. Returns the applied rows in the order given (`ord`, 1-based).
 */
async function updateOutcomes(c: Sql, rows: readonly Row[]): Promise<(ChangedRecipient & { id: number; ord: number })[]> {
  const list = rows.map((r) => r.o);
  const { rows: changed } = await c.query<ChangedRecipient & { id: number; ord: number }>(`WITH o AS (
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::integer[], $5::bigint[], $6::bigint[], $7::text[])
        WITH ORDINALITY AS t(id, state, reply, inc, next_at, now, owner, ord)),
    u AS (UPDATE recipients r SET state = o.state, last_reply = o.reply, attempts = r.attempts + o.inc,
        next_attempt_at = COALESCE(o.next_at, r.next_attempt_at), lease_owner = NULL, lease_until = NULL, updated_at = o.now
      FROM o WHERE r.id = o.id AND r.state = 'inflight' AND r.lease_owner = o.owner
      RETURNING r.id, r.message_id, r.address, r.domain, r.destination, r.attempts, o.ord, o.state, o.reply, o.now),
    a AS (INSERT INTO attempts (recipient_id, at, state, reply) SELECT u.id, u.now, u.state, u.reply FROM u ORDER BY u.ord)
    SELECT id, message_id, address, domain, destination, attempts, ord::int AS ord FROM u ORDER BY ord`, [
    list.map((o) => o.recipientId), list.map((o) => o.outcome.kind), list.map((o) => JSON.stringify(o.outcome.reply)),
    list.map((o) => increment(o.outcome)), list.map((o) => (o.outcome.kind === 'deferred' ? o.outcome.nextAttemptAt : null)),
    rows.map((r) => r.call.now), rows.map((r) => r.call.owner),
  ]);
  return changed;
}

export class PgOutcomes {
  private calls = 0;
  private readonly commits = new GroupCommit<OutcomeCall>({
    maxItems: BATCH_MAX_CALLS, maxInFlight: WRITES_IN_FLIGHT, retrySingly: retryable, what: 'recordOutcomes',
    write: (batch) => this.write(batch),
  });

  constructor(private readonly d: PgDb) {}

  /** Batches being written; close() waits for them. */
  get inFlight(): ReadonlySet<Promise<void>> {
    return this.commits.inFlight;
  }

  /** Starts writing what waits. */
  flushPending(): void {
    this.commits.flush();
  }

  /** Durably applies `outcomes` (a recipient named twice: its first); resolves after the commit with the ids applied, in the order given. */
  async record(outcomes: readonly RecipientOutcome[], now: number, owner: string): Promise<{ applied: number[]; finished: MessageId[] }> {
    if (this.d.closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', 'recordOutcomes: queue is closed');
    const seen = new Set<number>();
    const list = outcomes.filter((o) => !seen.has(o.recipientId) && seen.add(o.recipientId));
    const call: OutcomeCall = { list, now, owner, applied: [], finished: [] };
    await this.commits.add(`outcomes-${++this.calls}`, call);
    return { applied: call.applied, finished: call.finished };
  }

  private async write(batch: readonly Entry<OutcomeCall>[]): Promise<void> {
    const seen = new Set<number>();
    const rows: Row[] = [];
    for (const { item: call } of batch) {
      // A retried batch starts again from nothing: what a failed write noted was never committed.
      call.applied = [];
      call.finished = [];
      for (const o of call.list) if (!seen.has(o.recipientId) && seen.add(o.recipientId)) rows.push({ o, call });
    }
    if (rows.length === 0) return;
    const apply = async (c: Sql): Promise<void> => {
      const changed = await updateOutcomes(c, rows);
      const events = new Map<OutcomeCall, OutcomeEvents>();
      const entries: SuppressionEntry[] = [];
      for (const row of changed) {
        const { o: { outcome, rule }, call } = rows[row.ord - 1]!;
        call.applied.push(row.id);
        if (outcome.kind !== 'deferred') call.finished.push(row.message_id);
        if (this.d.events.sinks.length > 0) {
          // A triggered rule's event is written with the outcome, in its commit.
          let ev = events.get(call);
          if (!ev) events.set(call, ev = new OutcomeEvents(this.d.events, call.now));
          ev.add(row, outcome, rule);
        }
        const entry = bounceEntry(row, outcome, call.now);
        if (entry) entries.push(entry);
      }
      if (entries.length > 0) await writeSuppression(c, entries);
      const ids = [...new Set([...events.values()].flatMap((ev) => ev.messageIds()))];
      if (ids.length === 0) return;
      const facts = await messageFacts(c, ids);
      for (const [call, ev] of events) await insertOutbox(c, ev.rows(facts), call.now);
    };
    // Without event sinks and without a failure that may suppress its address, the outcomes and their history are
    // one statement — atomic and durable on its own, one round trip; otherwise one transaction around the rest.
    const more = this.d.events.sinks.length > 0 || rows.some(({ o: { outcome: o } }) => o.kind === 'failed' && o.suppressUntil !== undefined);
    await (more ? this.d.tx('recordOutcomes', apply) : this.d.one('recordOutcomes', apply));
  }
}

/**
 * scheduler/suppressed — the scheduler's suppression step: claimed
 * recipients whose address is on the suppression list (queue/suppression)
 * fail right after the claim, before any slot or connection, with
 * `550 5.1.1 <addr>: recipient suppressed since …: <original reply>`, the
 * entry's class and a `suppressed` event; one commit for all of them, so the
 * DSN sweep reports a message's suppressed recipients in one report.
 *
 * Does not decide what is suppressed (the list's entries say so) nor write
 * entries (recordOutcomes does, for the failures that cause them).
 */
import type { Logger } from 'pino';
import type { LastReply, RecipientRow } from '../queue/model.js';
import type { Queue } from '../queue/store.js';
import { replyLine, suppressedReply, suppressionKey, type SuppressionEntry } from '../queue/suppression.js';
import type { BounceClass } from '../smtp/bounce-class.js';

export interface SuppressedDeps {
  readonly queue: Pick<Queue, 'suppressions' | 'recipients'>;
  /** The node the rows are leased to (their outcomes are recorded under its lease). */
  readonly node: string;
  readonly log: Logger;
  readonly onOutcome?: (status: 'suppressed', destination: string, latencyMs: number, cls: BounceClass, reply: LastReply, address: string) => void;
  /** A queue call failed (logged by the scheduler's rule for that). */
  readonly onError: (err: unknown, what: string) => void;
}

/** Fails the suppressed rows; returns the others, to be delivered. A list that cannot be read suppresses nothing. */
export async function failSuppressed(rows: readonly RecipientRow[], now: number, d: SuppressedDeps): Promise<RecipientRow[]> {
  if (rows.length === 0) return [...rows];
  let found: Map<string, SuppressionEntry>;
  try {
    found = await d.queue.suppressions.suppressed(rows.map((r) => r.address), now);
  } catch (err) {
    // Deliver as if nothing were suppressed rather than strand the claim until its lease runs out.
    d.onError(err, 'could not read the suppression list');
    return [...rows];
  }
  if (found.size === 0) return [...rows];
  const gone: { r: RecipientRow; e: SuppressionEntry; reply: LastReply }[] = [];
  const rest: RecipientRow[] = [];
  for (const r of rows) {
    const e = found.get(suppressionKey(r.address));
    if (e) gone.push({ r, e, reply: { ...suppressedReply(r.address, e), command: 'suppression', ours: true, class: e.class } });
    else rest.push(r);
  }
  const applied = new Set(await d.queue.recipients.recordOutcomes(
    gone.map(({ r, reply }) => ({ recipientId: r.id, outcome: { kind: 'failed', reply, suppressed: true } })), now, d.node));
  for (const { r, e, reply } of gone) {
    if (!applied.has(r.id)) continue;
    d.log.info({
      event: 'delivery', queue_id: r.messageId, to: r.address, relay: 'none', attempts: r.attempts, dsn: reply.enhanced, status: 'suppressed',
      class: e.class, reply: replyLine(reply), command: 'suppression', suppressed_since: new Date(e.since).toISOString(),
    }, `${r.messageId}: to=<${r.address}> status=suppressed`);
    d.onOutcome?.('suppressed', r.destination, 0, e.class, reply, r.address);
  }
  return rest;
}

/**
 * scheduler/outcome — what one recipient's verdict from a transaction becomes
 * in the queue (its durable outcome), and the delivery log line that tells
 * it. Pure: the caller (scheduler/record) supplies the clock, and for a
 * connection-level deferral when the destination takes connections again
 * (destination/service's judgement); it records the outcomes.
 *
 * The verdicts themselves (which reply means what) are the spec's table
 * (delivery/rcpt-table, delivery/failure-policy); this only decides *when* a
 * temporary failure is tried again and whether it counts as an attempt.
 */
import type { OutboundBatch, RecipientVerdict } from '../delivery/types.js';
import type { Outcome, RecipientRow } from '../queue/model.js';

export type DeliveryStatus = 'sent' | 'bounced' | 'deferred';

export interface OutcomeContext {
  readonly now: number;
  /** A bounce rule in force for this reply: a temporary result fails at once (never a delivered one). */
  readonly bounceRule: boolean;
  /**
   * For a connection-level deferral: when the destination takes connections again, as destination/service
   * judged the batch — its backoff end, or now after a throttle (or once the row is healthy again).
   * Undefined: no such judgement, the recipient's own retry schedule.
   */
  readonly destinationRetryAt?: number;
  /** The recipient's own next try after one more counted attempt. */
  readonly retryAt: (attempts: number) => number;
}

export function outcomeOf(given: RecipientVerdict, r: RecipientRow, c: OutcomeContext): { readonly outcome: Outcome; readonly status: DeliveryStatus; readonly verdict: RecipientVerdict } {
  const v: RecipientVerdict = given.kind === 'deferred' && c.bounceRule ? { kind: 'failed', reply: given.reply } : given;
  let outcome: Outcome;
  if (v.kind === 'delivered') outcome = { kind: 'delivered', reply: v.reply };
  else if (v.kind === 'failed') outcome = { kind: 'failed', reply: v.reply };
  // The destination's backoff (or, throttled, its lower connection limit from now), not the recipient's
  // schedule, decides the next try (spec: 421 row); no attempt counted.
  else if (v.connectionLevel && c.destinationRetryAt !== undefined) outcome = { kind: 'deferred', reply: v.reply, nextAttemptAt: c.destinationRetryAt, countAttempt: false };
  else outcome = { kind: 'deferred', reply: v.reply, nextAttemptAt: c.retryAt(r.attempts + 1), countAttempt: true };
  const status: DeliveryStatus = v.kind === 'delivered' ? 'sent' : v.kind === 'failed' ? 'bounced' : 'deferred';
  return { outcome, status, verdict: v };
}

/** The delivery log line's fields and message: what `grep QUEUEID` shows of each attempt. */
export function deliveryLine(batch: OutboundBatch, r: RecipientRow, v: RecipientVerdict, outcome: Outcome, status: DeliveryStatus, now: number): { fields: Record<string, unknown>; msg: string } {
  const reply = v.reply;
  return {
    fields: {
      event: 'delivery', queue_id: batch.message.id, from: batch.message.sender, to: r.address, orcpt: r.orcpt,
      relay: reply.host ?? 'none', delay: (now - batch.message.receivedAt) / 1000,
      attempts: outcome.kind === 'deferred' && !outcome.countAttempt ? r.attempts : r.attempts + 1,
      dsn: reply.enhanced, status, reply: `${reply.code}${reply.enhanced ? ` ${reply.enhanced}` : ''} ${reply.text}`,
      command: reply.command, possible_duplicate: v.kind === 'deferred' && v.possibleDuplicate ? true : undefined,
    },
    msg: `${batch.message.id}: to=<${r.address}> status=${status}`,
  };
}

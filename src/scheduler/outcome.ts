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
 *
 * Every outcome's reply gets its bounce class here (asked of smtp/bounce-rules
 * through `classify`), and a failure that speaks for the address until when
 * it is suppressed.
 */
import type { OutboundBatch, RecipientVerdict } from '../delivery/types.js';
import type { LastReply, Outcome, RecipientRow } from '../queue/model.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import { suppressionUntil, type SuppressionSettings } from '../queue/suppression.js';

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
  /** The bounce classifier in force (smtp/bounce-rules): every outcome's reply carries its class. */
  readonly classify: (r: LastReply) => BounceClass;
  /** The suppression list's settings (unset: no suppression). */
  readonly suppression?: SuppressionSettings;
}

export function outcomeOf(given: RecipientVerdict, r: RecipientRow, c: OutcomeContext): { readonly outcome: Outcome; readonly status: DeliveryStatus; readonly verdict: RecipientVerdict } {
  const reply: LastReply = { ...given.reply, class: c.classify(given.reply) };
  const v: RecipientVerdict = given.kind === 'deferred' && c.bounceRule ? { kind: 'failed', reply } : { ...given, reply };
  let outcome: Outcome;
  if (v.kind === 'delivered') outcome = { kind: 'delivered', reply: v.reply };
  else if (v.kind === 'failed') {
    // A failure that speaks for the address puts it on the suppression list (queue/suppression decides).
    const until = c.suppression ? suppressionUntil(v.reply, c.now, c.suppression) : undefined;
    outcome = until === undefined ? { kind: 'failed', reply: v.reply } : { kind: 'failed', reply: v.reply, suppressUntil: until };
  }
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
      dsn: reply.enhanced, status, class: reply.class, reply: `${reply.code}${reply.enhanced ? ` ${reply.enhanced}` : ''} ${reply.text}`,
      command: reply.command, possible_duplicate: v.kind === 'deferred' && v.possibleDuplicate ? true : undefined,
      suppressed_until: outcome.kind === 'failed' && outcome.suppressUntil !== undefined ? new Date(outcome.suppressUntil).toISOString() : undefined,
      tenant: batch.message.tenant, campaign: batch.message.campaign,
      source: batch.source?.name, source_address: batch.source?.address,
    },
    msg: `${batch.message.id}: to=<${r.address}> status=${status}`,
  };
}

/**
 * scheduler/record — turns a transport's verdicts into durable outcomes and
 * one delivery log line each. `record` is what a transport calls after each
 * transaction (and awaits before it uses the connection again: a delivered
 * recipient is durable first, spec I1).
 *
 * A connection-level deferral (421, no reply, every host down) is not
 * recorded there: when it comes, whether the destination failed or only
 * asked for fewer connections is not known yet (destination/service judges
 * that from the batch result). It is kept on the batch's `pending` and
 * `settle`d afterwards, due when the destination takes connections again,
 * in one commit with the batches that waited here for the same destination.
 * Nothing is lost meanwhile: those recipients are still leased to this node
 * (a crash gives them back when the lease runs out).
 *
 * Each reply that is not a delivery is judged by the reply rules once
 * (a 421 that defers a hundred recipients triggers a rule once); a bounce
 * rule fails the recipient at once; a suspend or set rule goes on the gate's
 * row after the outcomes are durable. The first recipient whose verdict
 * carries a triggering reply carries the rule to the store (RecipientOutcome
 * .rule, kept on its pending verdict if it waits for `settle`): its
 * `rule_triggered` event is written in the commit of that outcome. It decides no retry time itself
 * (scheduler/outcome, scheduler/retry) and no destination health.
 */
import type { Logger } from 'pino';
import type { OutboundBatch, RecipientVerdict } from '../delivery/types.js';
import type { Destinations } from '../destination/service.js';
import type { LastReply, RecipientOutcome, RecipientRow, TriggeredRule } from '../queue/model.js';
import type { RecipientQueue } from '../queue/recipient-queue.js';
import type { Batch } from './batches.js';
import { deliveryLine, outcomeOf, type DeliveryStatus } from './outcome.js';
import { retryDelay, type RetrySettings } from './retry.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import type { SuppressionSettings } from '../queue/suppression.js';

export interface RecorderDeps {
  readonly recipients: Pick<RecipientQueue, 'recordOutcomes'>;
  readonly destinations: Pick<Destinations, 'ruleFor' | 'share'>;
  readonly log: Logger;
  readonly clock: () => number;
  /** This node's id: the owner of the leases outcomes are recorded under. */
  readonly node: string;
  readonly retry: RetrySettings;
  readonly random: () => number;
  readonly onOutcome?: (status: DeliveryStatus, destination: string, latencyMs: number, cls: BounceClass, reply: LastReply, address: string) => void;
  /** The bounce classifier in force (smtp/bounce-rules). */
  readonly classify: (r: LastReply) => BounceClass;
  /** The suppression list's settings now (config in force). */
  readonly suppression: () => SuppressionSettings;
}

/** A batch's connection-level deferrals, by recipient id, until the destination's judgement settles them. */
export type Pending = Map<number, CarriedVerdict>;

/** A verdict, with the reply rule its reply triggered when this recipient's outcome carries that rule's event. */
type CarriedVerdict = RecipientVerdict & { readonly rule?: TriggeredRule };

export class Recorder {
  constructor(private readonly d: RecorderDeps) {}

  /** A transaction's verdicts: recorded now, but connection-level deferrals (without a bounce rule) go on `pending`. */
  async record(batch: OutboundBatch, verdicts: ReadonlyMap<number, RecipientVerdict>, pending: Pending): Promise<void> {
    const now = this.d.clock();
    const rules = this.rules(batch, verdicts.values());
    const direct: [number, CarriedVerdict][] = [];
    const carried = new Set<LastReply>();
    for (const [id, v] of verdicts) {
      const rule = v.kind === 'delivered' ? undefined : rules.get(v.reply);
      // One event per triggering reply: the first recipient that got it carries the rule.
      const c: CarriedVerdict = rule && !carried.has(v.reply) ? { ...v, rule: { text: rule.text, action: rule.action } } : v;
      if (rule) carried.add(v.reply);
      if (v.kind === 'deferred' && v.connectionLevel && rule?.action !== 'bounce') pending.set(id, c);
      else direct.push([id, c]);
    }
    await this.apply(batch, direct, rules, now, undefined, []);
  }

  /**
   * A batch's pending deferrals, due at `at` (the destination's judgement; undefined: the recipients' own
   * retry), and the batches that waited here for the destination, due at `at` with `reply` (they were never
   * tried: no attempt, no log line): one commit.
   */
  async settle(batch: OutboundBatch | undefined, pending: Pending, at: number | undefined, waiting: readonly Batch[] = [], reply?: LastReply): Promise<void> {
    const now = this.d.clock();
    const parked: RecipientOutcome[] = at === undefined || !reply ? [] : waiting.flatMap((b) => b.recipients.map((x) => ({
      recipientId: x.id, outcome: { kind: 'deferred', reply: this.classified(x.lastReply ?? reply), nextAttemptAt: at, countAttempt: false } as const,
    })));
    const left = [...pending];
    pending.clear();
    if (!batch) {
      if (parked.length > 0) await this.d.recipients.recordOutcomes(parked, now, this.d.node);
      return;
    }
    // Rules were judged when these verdicts came (record): a reply's trigger is not counted twice.
    await this.apply(batch, left, new Map(), now, at, parked);
  }

  private classified(r: LastReply): LastReply {
    return { ...r, class: this.d.classify(r) };
  }

  /** The rule (if any) each distinct reply that is not a delivery triggers. */
  private rules(batch: OutboundBatch, verdicts: Iterable<RecipientVerdict>): Map<LastReply, ReturnType<Destinations['ruleFor']>> {
    const judged = new Map<LastReply, ReturnType<Destinations['ruleFor']>>();
    for (const v of verdicts) {
      // Every reply that is not a delivery is judged by the rules (a suspend may follow a 5xx too).
      if (v.kind !== 'delivered' && !judged.has(v.reply)) judged.set(v.reply, this.d.destinations.ruleFor(batch.destination, batch.message.id, v.reply, batch.message.tenant));
    }
    return judged;
  }

  private async apply(batch: OutboundBatch, verdicts: readonly [number, CarriedVerdict][], rules: ReadonlyMap<LastReply, ReturnType<Destinations['ruleFor']>>,
    now: number, destinationRetryAt: number | undefined, extra: readonly RecipientOutcome[]): Promise<void> {
    const byId = new Map<number, RecipientRow>(batch.recipients.map((r) => [r.id, r]));
    const outcomes: RecipientOutcome[] = [...extra];
    // The settings in force, read once per transaction, not once per recipient.
    const suppression = this.d.suppression();
    for (const [id, given] of verdicts) {
      const r = byId.get(id);
      if (!r) continue;
      const { outcome, status, verdict } = outcomeOf(given, r, {
        now, bounceRule: given.kind !== 'delivered' && rules.get(given.reply)?.action === 'bounce',
        ...(destinationRetryAt !== undefined ? { destinationRetryAt } : {}),
        retryAt: (attempts) => now + retryDelay(attempts, this.d.retry, this.d.random),
        classify: this.d.classify, suppression,
      });
      outcomes.push({ recipientId: id, outcome, ...(given.rule ? { rule: given.rule } : {}) });
      const line = deliveryLine(batch, r, verdict, outcome, status, now);
      this.d.log.info(line.fields, line.msg);
      this.d.onOutcome?.(status, batch.destination, now - batch.message.receivedAt, outcome.reply.class ?? this.d.classify(outcome.reply), outcome.reply, r.address);
    }
    if (outcomes.length > 0) await this.d.recipients.recordOutcomes(outcomes, now, this.d.node);
    // A suspend or set rule now in force goes on the gate's row: every node (and the next start) honours it.
    if ([...rules.values()].some((rule) => rule !== undefined && rule.action !== 'bounce')) await this.d.destinations.share(batch.destination);
  }
}

/**
 * scheduler/sweeps — the queue manager's housekeeping, driven by queue state
 * so that a crash loses nothing: expiry after max_queue_lifetime, delay
 * warnings after delay_warning_after, and the DSNs owed for failed, expired
 * and (NOTIFY=SUCCESS) delivered recipients — one report per message per
 * sweep, so recipients that failed in the same attempt share one DSN.
 *
 * Every sweep claims its rows before it acts on them (RecipientQueue's
 * claim* calls, leased to this node), so on several nodes each expiry is
 * logged once and each report is sent by one node. A node that dies
 * mid-report leaves a claim that runs out; another node then sends it (a
 * crash can repeat a report, never lose one). Reports are queued through
 * intake/ like every new message.
 */
import type { Logger } from 'pino';
import { planReport, type NotifySettings, type ReportEvent } from '../dsn/notify.js';
import type { Intake } from '../intake/intake.js';
import type { MessageStore } from '../queue/message-store.js';
import type { LastReply, RecipientRow } from '../queue/model.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import type { RecipientQueue, SweepClaim } from '../queue/recipient-queue.js';

export interface SweepDeps {
  readonly messages: MessageStore;
  readonly recipients: RecipientQueue;
  /** Where reports go, as every new message does. */
  readonly intake: Intake;
  readonly log: Logger;
  /** This node's id: owns the sweeps' claims. */
  readonly node: string;
  /** How long a claim lasts if this node dies holding it. */
  readonly leaseMs: number;
  readonly lifetimeMs: number;
  readonly delayWarningMs: number;
  readonly notify: NotifySettings;
  /** Called after a DSN is enqueued (so the scheduler can deliver it soon). */
  readonly onEnqueued?: () => void;
  /** Called once per recipient that expired (metrics, recent failures). */
  readonly onExpired?: (destination: string, cls: BounceClass, reply: LastReply, address: string) => void;
  /** The bounce classifier in force (smtp/bounce-rules): an expiry is labelled like every other outcome. */
  readonly classify: (r: LastReply) => BounceClass;
}

const BATCH = 1000;

function byMessage(rows: readonly RecipientRow[]): Map<string, RecipientRow[]> {
  const m = new Map<string, RecipientRow[]>();
  for (const r of rows) {
    const list = m.get(r.messageId);
    if (list) list.push(r);
    else m.set(r.messageId, [r]);
  }
  return m;
}

export class Sweeps {
  constructor(private readonly d: SweepDeps) {}

  /** `full`: also expiry and delay warnings (they look at old messages only; the caller runs them now and then). */
  async run(now: number, full = true): Promise<void> {
    if (full) {
      await this.expire(now);
      await this.delays(now);
    }
    await this.reports(now);
  }

  private claim(now: number): SweepClaim {
    return { now, limit: BATCH, owner: this.d.node, leaseUntil: now + this.d.leaseMs };
  }

  private async expire(now: number): Promise<void> {
    const claimed = await this.d.recipients.claimExpirable(now - this.d.lifetimeMs, this.claim(now));
    if (claimed.length === 0) return;
    const days = Math.round(this.d.lifetimeMs / 86_400_000 * 10) / 10;
    const replyOf = (r: RecipientRow): LastReply => {
      const reply: LastReply = {
        code: r.lastReply?.code ?? 451, enhanced: '4.4.7', host: r.lastReply?.host, command: r.lastReply?.command,
        text: `message expired after ${days} days in the queue${r.lastReply ? `; last error: ${r.lastReply.code} ${r.lastReply.text}` : ''}`,
      };
      return { ...reply, class: this.d.classify(reply) };
    };
    const replies = new Map(claimed.map((r) => [r.id, replyOf(r)]));
    const applied = new Set(await this.d.recipients.recordOutcomes(claimed.map((r) => ({
      recipientId: r.id,
      outcome: { kind: 'expired', reply: replies.get(r.id)! },
    })), now, this.d.node));
    const rows = claimed.filter((r) => applied.has(r.id));
    // The same fields as every other outcome line (sender, delay), so `grep QUEUEID` tells the whole story.
    const ids = [...new Set(rows.map((r) => r.messageId))];
    const messages = new Map(ids.map((id, i) => [id, i]));
    const found = await Promise.all(ids.map((id) => this.d.messages.getMessage(id)));
    for (const r of rows) {
      const m = found[messages.get(r.messageId)!];
      this.d.log.info({
        event: 'delivery', queue_id: r.messageId, from: m?.sender, to: r.address, relay: r.lastReply?.host ?? 'none',
        delay: m ? (now - m.receivedAt) / 1000 : undefined, attempts: r.attempts, dsn: '4.4.7', status: 'expired', class: replies.get(r.id)!.class,
        reply: r.lastReply ? `${r.lastReply.code}${r.lastReply.enhanced ? ` ${r.lastReply.enhanced}` : ''} ${r.lastReply.text}` : undefined,
      }, `${r.messageId}: to=<${r.address}> status=expired`);
      const reply = replies.get(r.id)!;
      this.d.onExpired?.(r.destination, reply.class ?? 'MessageExpired', reply, r.address);
    }
  }

  // Fix (H): reports are planned for all messages of a sweep first (their DSNs enqueued concurrently, so the
  // store group-commits them), then every settled recipient is marked in one commit — it was one commit per
  // message, which stalled a pass for seconds when thousands of messages crossed delay_warning_after at once.
  // Order per recipient is unchanged: its DSN is durable before it is marked, so a crash can repeat a report, never lose one.

  private async delays(now: number): Promise<void> {
    const rows = await this.d.recipients.claimDelayed(now - this.d.delayWarningMs, this.claim(now));
    await this.reportAll('delay', byMessage(rows), now);
  }

  private async reports(now: number): Promise<void> {
    const rows = await this.d.recipients.claimReportsDue(this.claim(now));
    const failed = new Map<string, RecipientRow[]>();
    const delivered = new Map<string, RecipientRow[]>();
    for (const [id, list] of byMessage(rows)) {
      const f = list.filter((r) => r.state === 'failed' || r.state === 'expired');
      const d = list.filter((r) => r.state === 'delivered');
      if (f.length) failed.set(id, f);
      if (d.length) delivered.set(id, d);
    }
    await this.reportAll('failure', failed, now);
    await this.reportAll('success', delivered, now);
  }

  private async reportAll(event: ReportEvent, groups: ReadonlyMap<string, RecipientRow[]>, now: number): Promise<void> {
    if (groups.size === 0) return;
    const settled = await Promise.all([...groups].map(([id, list]) => this.report(event, id, list, now)));
    await this.d.recipients.markDsn(settled.flat(), event === 'delay' ? 'delay' : 'final');
  }

  /** Plans (and enqueues) one message's report; returns the recipients it settles, for the caller to mark. */
  private async report(event: ReportEvent, messageId: string, rows: RecipientRow[], now: number): Promise<readonly number[]> {
    const { messages, log } = this.d;
    const message = await messages.getMessage(messageId);
    if (!message) return rows.map((r) => r.id);
    const body = await messages.getBody(messageId);
    const plan = planReport(event, message, body, rows, this.d.notify, now);
    if (plan.dropped) log.warn({ event: 'dsn_dropped', queue_id: messageId, detail: plan.dropped }, 'undeliverable report dropped');
    if (plan.message) {
      const { id } = await this.d.intake.accept(plan.message);
      log.info({ event: 'dsn', queue_id: messageId, dsn_id: id, kind: event, to: plan.message.recipients[0]?.address, recipients: rows.length },
        `${messageId}: sender ${event} notification: ${id}`);
      this.d.onEnqueued?.();
    }
    return plan.settled;
  }
}

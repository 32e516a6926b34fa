/**
 * scheduler/sweeps — the queue manager's housekeeping, driven by queue state
 * so that a crash loses nothing: expiry after max_queue_lifetime, delay
 * warnings after delay_warning_after, and the DSNs owed for failed, expired
 * and (NOTIFY=SUCCESS) delivered recipients — one report per message per
 * sweep, so recipients that failed in the same attempt share one DSN.
 */
import type { Logger } from 'pino';
import { planReport, type NotifySettings, type ReportEvent } from '../dsn/notify.js';
import type { RecipientRow } from '../queue/model.js';
import type { Store } from '../queue/store.js';

export interface SweepDeps {
  readonly store: Store;
  readonly log: Logger;
  readonly lifetimeMs: number;
  readonly delayWarningMs: number;
  readonly notify: NotifySettings;
  /** Called after a DSN is enqueued (so the scheduler can deliver it soon). */
  readonly onEnqueued?: () => void;
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

  async run(now: number): Promise<void> {
    await this.expire(now);
    await this.delays(now);
    await this.reports(now);
  }

  private async expire(now: number): Promise<void> {
    const rows = await this.d.store.listExpirable(now - this.d.lifetimeMs, BATCH);
    if (rows.length === 0) return;
    const days = Math.round(this.d.lifetimeMs / 86_400_000 * 10) / 10;
    await this.d.store.recordOutcomes(rows.map((r) => ({
      recipientId: r.id,
      outcome: {
        kind: 'expired',
        reply: {
          code: r.lastReply?.code ?? 451, enhanced: '4.4.7', host: r.lastReply?.host, command: r.lastReply?.command,
          text: `message expired after ${days} days in the queue${r.lastReply ? `; last error: ${r.lastReply.code} ${r.lastReply.text}` : ''}`,
        },
      },
    })), now);
    for (const r of rows) {
      this.d.log.info({ event: 'delivery', queue_id: r.messageId, to: r.address, status: 'expired', dsn: '4.4.7', relay: r.lastReply?.host ?? 'none' },
        `${r.messageId}: to=<${r.address}> status=expired`);
    }
  }

  private async delays(now: number): Promise<void> {
    const rows = await this.d.store.listDelayed(now - this.d.delayWarningMs, BATCH);
    for (const [id, list] of byMessage(rows)) await this.report('delay', id, list, now);
  }

  private async reports(now: number): Promise<void> {
    const rows = await this.d.store.listReportsDue(BATCH);
    for (const [id, list] of byMessage(rows)) {
      const failed = list.filter((r) => r.state === 'failed' || r.state === 'expired');
      const delivered = list.filter((r) => r.state === 'delivered');
      if (failed.length) await this.report('failure', id, failed, now);
      if (delivered.length) await this.report('success', id, delivered, now);
    }
  }

  private async report(event: ReportEvent, messageId: string, rows: RecipientRow[], now: number): Promise<void> {
    const { store, log } = this.d;
    const message = await store.getMessage(messageId);
    const ids = rows.map((r) => r.id);
    const mark = event === 'delay' ? 'delay' : 'final';
    if (!message) return store.markDsn(ids, mark);
    const body = await store.getBody(messageId);
    const plan = planReport(event, message, body, rows, this.d.notify, now);
    if (plan.dropped) log.warn({ event: 'dsn_dropped', queue_id: messageId, detail: plan.dropped }, 'undeliverable report dropped');
    if (plan.message) {
      const id = await store.enqueue(plan.message);
      log.info({ event: 'dsn', queue_id: messageId, dsn_id: id, kind: event, to: plan.message.recipients[0]?.address, recipients: rows.length },
        `${messageId}: sender ${event} notification: ${id}`);
      this.d.onEnqueued?.();
    }
    await store.markDsn(plan.settled, mark);
  }
}

/**
 * destination/feedback — what the queue manager learns from each delivery about
 * its destination, and the log line each lesson gets: a session that worked
 * (adaptive concurrency grows), a recipient limit (I6), a reply rule
 * triggered (once per reply), and whether a connection-level failure was a
 * throttle (the remote wants fewer connections while others of ours work)
 * rather than a failing cohort (backoff as ever).
 *
 * The decisions are Politeness's and the failure policy's; this file keeps
 * the per-batch bookkeeping (which batch started when, which was throttled)
 * out of qmgr. No I/O beyond the logger.
 */
import type { Logger } from 'pino';
import { isTimeout, judgeReply } from '../delivery/failure-policy.js';
import type { ReplyRule } from './reply-rules.js';
import type { BatchResult, OutboundBatch } from '../delivery/types.js';
import type { LastReply } from '../queue/model.js';
import type { Politeness } from './politeness.js';

const show = (r: LastReply): string => `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.text}`;

/** This node's work on a destination, as far as feedback needs it. */
export interface DestinationWork {
  readonly key: string;
  /** Connections this node runs for it now. */
  readonly workers: number;
  /** Sessions that worked so far (monotonic). */
  successes: number;
}

export class Feedback {
  private readonly throttled = new WeakSet<OutboundBatch>();
  private readonly startedAt = new WeakMap<OutboundBatch, number>();

  constructor(private readonly politeness: Politeness, private readonly log: Logger) {}

  /** A batch goes out now (a timeout is a throttle only if another session worked after this). */
  started(batch: OutboundBatch, d: DestinationWork): void {
    this.startedAt.set(batch, d.successes);
  }

  /** After a delivery: a session worked (concurrency grows), a recipient limit met (I6, logged when it changes). True when a limit changed. */
  learn(d: DestinationWork, result: BatchResult): boolean {
    if (result.sessionWorked) {
      d.successes++;
      this.politeness.sessionWorked(d.key);
    }
    if (result.limitReached) {
      const { accepted, reply } = result.limitReached;
      const now = this.politeness.limitReached(d.key, accepted, reply);
      if (now !== undefined) {
        this.log.info({ event: 'destination_limit_learned', destination: d.key, max_recipients: now, reply: show(reply) },
          `destination ${d.key}: at most ${now} recipients per transaction`);
        return true;
      }
    }
    return false;
  }

  /**
   * Is this connection-level deferral of `batch` a throttle? Decided once per batch, when its first
   * verdict is recorded: "too many connections" while others of ours are open says so itself; a timeout
   * only counts when another session worked meanwhile (else every connection hangs: a failing cohort).
   */
  isThrottle(batch: OutboundBatch, reply: LastReply, d: DestinationWork | undefined): boolean {
    if (this.throttled.has(batch)) return true;
    if (!d || !judgeReply(reply).throttle) return false;
    const yes = isTimeout(reply) ? d.successes > (this.startedAt.get(batch) ?? Infinity) : d.workers > 1;
    if (yes) this.throttled.add(batch);
    return yes;
  }

  wasThrottled(batch: OutboundBatch | undefined): boolean {
    return batch !== undefined && this.throttled.has(batch);
  }

  /** The throttle's effect: fewer connections (and a ceiling for "too many"), logged. */
  throttle(d: DestinationWork, reply: LastReply): void {
    const limit = isTimeout(reply) ? this.politeness.sessionTimedOut(d.key) : this.politeness.tooManyConnections(d.key, d.workers - 1, reply);
    this.log.warn({ event: 'destination_throttled', destination: d.key, connections: limit, reply: show(reply) },
      `destination ${d.key} asked for fewer connections: now ${limit}`);
  }

  /** The reply rule a reply triggers (now in force), logged once per trigger. */
  ruleFor(batch: OutboundBatch, reply: LastReply): ReplyRule | undefined {
    const rule = this.politeness.onReply(batch.destination, reply);
    if (rule) {
      this.log.warn({ event: 'rule_triggered', destination: batch.destination, rule: rule.text, action: rule.action, queue_id: batch.message.id, reply: show(reply) },
        `destination ${batch.destination}: ${rule.text}`);
    }
    return rule;
  }
}

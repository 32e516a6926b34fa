/**
 * events/dispatcher — sends the event outbox (queue/event-outbox) to its sinks:
 * one loop per sink, each claiming a bounded batch of that sink's due rows with
 * a lease owned by this node, sending it, and then deleting the rows (the sink
 * acknowledged) or making them due again after the sink's backoff (it did not).
 *
 * Backoff is per sink: 1 s after the first failure, doubling, capped at
 * `retry_max`; the first success resets it. It is written on the rows too, so
 * another node does not hammer a sink this one found down. A sink that is down
 * costs one claim per backoff step and never more than one batch in memory;
 * nothing here waits on delivery, and delivery never waits on this. Rows of a
 * node that died are claimed by another once their lease runs out.
 *
 * Does not build events (the queue writes them with each state change) nor
 * know any wire protocol (events/webhook, events/amqp).
 */
import type { Logger } from 'pino';
import type { EventOutbox } from '../queue/event-outbox.js';
import { probeDelay } from '../queue/health.js';
import type { EventSink } from './sink.js';

/**
 * How long a loop waits before it looks at the outbox again after a short batch; when it then keeps
 * finding nothing, the wait doubles up to IDLE_POLL_MAX_MS (an idle sink costs one claim every 2 s,
 * not four a second), and the first row found brings it back.
 */
export const IDLE_POLL_MS = 250;
export const IDLE_POLL_MAX_MS = 2_000;
/** The wait after the first failed send; it doubles up to retry_max. */
export const FIRST_RETRY_MS = 1_000;
/** A claim's lease beyond the send's own timeout (the queue call and the ack fit well inside). */
const LEASE_SLACK_MS = 30_000;

/** The wait after `failures` failed sends in a row (≥ 1): queue/health's doubling, from FIRST_RETRY_MS up to retry_max. */
export function backoffMs(failures: number, retryMaxMs: number): number {
  return probeDelay(Math.max(0, failures - 1), FIRST_RETRY_MS, retryMaxMs);
}

export interface DispatcherDeps {
  readonly outbox: EventOutbox;
  readonly sinks: readonly EventSink[];
  readonly node: string;
  readonly retryMaxMs: number;
  readonly log: Logger;
  readonly clock?: () => number;
  /** Counts for /metrics. */
  readonly onSent?: (sink: string, n: number) => void;
  readonly onFailed?: (sink: string) => void;
}

class SinkLoop {
  private failures = 0;
  /** Claims in a row that found nothing. */
  private empty = 0;
  private stopped = false;
  private wake: (() => void) | undefined;
  done: Promise<void> = Promise.resolve();

  constructor(private readonly sink: EventSink, private readonly d: DispatcherDeps, private readonly clock: () => number) {}

  start(): void {
    this.done = this.run();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    return this.done;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      this.wake = () => { clearTimeout(timer); this.wake = undefined; resolve(); };
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const wait = await this.once().catch((err: unknown) => {
        // The queue itself failed (unreachable, closed): try again shortly; the rows are safe where they are.
        if (!this.stopped) this.d.log.warn({ event: 'events_queue_error', sink: this.sink.name, err: (err as Error).message }, `events: ${this.sink.name}: queue error`);
        return FIRST_RETRY_MS;
      });
      if (wait > 0 && !this.stopped) await this.sleep(wait);
    }
  }

  /** One claim and send; returns how long to wait before the next (0: go on at once). */
  private async once(): Promise<number> {
    const now = this.clock();
    const rows = await this.d.outbox.claimEvents(this.sink.name, {
      now, limit: this.sink.batch, owner: this.d.node, leaseUntil: now + this.sink.timeoutMs + LEASE_SLACK_MS,
    });
    if (rows.length === 0) return probeDelay(this.empty++, IDLE_POLL_MS, IDLE_POLL_MAX_MS);
    this.empty = 0;
    const ids = rows.map((r) => r.id);
    try {
      await this.sink.send(rows);
    } catch (err) {
      this.failures++;
      const wait = backoffMs(this.failures, this.d.retryMaxMs);
      this.d.onFailed?.(this.sink.name);
      this.d.log.warn({
        event: 'events_send_failed', sink: this.sink.name, kind: this.sink.kind, events: rows.length, failures: this.failures,
        retry_in_ms: wait, err: (err as Error).message,
      }, `events: ${this.sink.name}: ${rows.length} event(s) not acknowledged (${(err as Error).message}); next try in ${wait} ms`);
      await this.d.outbox.retryEvents(ids, this.d.node, this.clock() + wait);
      return wait;
    }
    // Acknowledged: a crash before this delete sends the batch again (same ids), never loses it.
    await this.d.outbox.ackEvents(ids);
    if (this.failures > 0) this.d.log.info({ event: 'events_sink_ok', sink: this.sink.name, after_failures: this.failures }, `events: ${this.sink.name}: acknowledged again`);
    this.failures = 0;
    this.d.onSent?.(this.sink.name, rows.length);
    return rows.length < this.sink.batch ? IDLE_POLL_MS : 0;
  }
}

export class EventDispatcher {
  private readonly loops: SinkLoop[];

  constructor(private readonly d: DispatcherDeps) {
    const clock = d.clock ?? Date.now;
    this.loops = d.sinks.map((s) => new SinkLoop(s, d, clock));
  }

  start(): void {
    for (const l of this.loops) l.start();
  }

  /** Ends the loops after the send in flight (bounded by its timeout) and closes the sinks. */
  async stop(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.stop()));
    await Promise.all(this.d.sinks.map((s) => s.close().catch(() => undefined)));
  }
}

/**
 * queue/health — this node's view of its queue's storage, one per node:
 *
 * - `ok`;
 * - `unavailable`: the database cannot be reached (refused, shut down, the
 *   connection lost: HAL_ERR_QUEUE_UNAVAILABLE). Transient: a probe runs
 *   with bounded backoff (1 s, 2 s, 4 s … 10 s) and the state returns to `ok`
 *   by itself when it succeeds;
 * - `failed`: the storage itself is broken (a corrupt SQLite file, an I/O
 *   error, the queue thread gone: HAL_ERR_QUEUE_FAILED). Not recoverable
 *   here: it stays failed until restart, and wins over `unavailable`.
 *
 * The queue implementations report into it; the rest of the node reads it
 * (new mail gets 451 4.3.0, the scheduler claims nothing, /api/health
 * answers 503) and listens for changes (one log line per change, not one per
 * message). Does no I/O of its own besides calling the probe it is given.
 */
import { HalcyonError } from '../errors.js';

export type QueueHealthState = 'ok' | 'unavailable' | 'failed';

export interface QueueHealthChange {
  readonly state: QueueHealthState;
  /** Why, when not ok. */
  readonly error?: HalcyonError;
  /** Back to ok: how long it was unavailable (ms, real time). */
  readonly downMs?: number;
}

export const PROBE_INITIAL_MS = 1_000;
export const PROBE_MAX_MS = 10_000;

/** The wait before probe number `attempt` (0-based): doubling from `initialMs`, never above `maxMs`. */
export function probeDelay(attempt: number, initialMs = PROBE_INITIAL_MS, maxMs = PROBE_MAX_MS): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}

export interface QueueHealthOptions {
  /** Resolves when the storage answers again (for a database: a trivial query). Absent: never recovers by itself. */
  readonly probe?: () => Promise<void>;
  readonly initialMs?: number;
  readonly maxMs?: number;
}

export class QueueHealth {
  private current: QueueHealthState = 'ok';
  private why: HalcyonError | undefined;
  private since = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly listeners: ((change: QueueHealthChange) => void)[] = [];

  constructor(private readonly opts: QueueHealthOptions = {}) {}

  get state(): QueueHealthState {
    return this.current;
  }

  /** The error new mail is refused with while not ok (its code is the reply); undefined while ok. */
  get problem(): HalcyonError | undefined {
    return this.why;
  }

  /** Called on every change of state. */
  onChange(listener: (change: QueueHealthChange) => void): void {
    this.listeners.push(listener);
  }

  /** The storage is broken: failed until restart (no probe). */
  failed(err: HalcyonError): void {
    if (this.current === 'failed' || this.closed) return;
    this.stopProbe();
    this.set('failed', err);
  }

  /** The database cannot be reached: unavailable until the probe answers. Repeated losses while unavailable change nothing. */
  lost(err: HalcyonError): void {
    if (this.current !== 'ok' || this.closed) return;
    this.since = performance.now();
    this.set('unavailable', err);
    this.scheduleProbe(0);
  }

  /** Stops probing (the queue is closing). */
  close(): void {
    this.closed = true;
    this.stopProbe();
  }

  private set(state: QueueHealthState, error: HalcyonError | undefined, downMs?: number): void {
    this.current = state;
    this.why = error;
    const change: QueueHealthChange = { state, ...(error ? { error } : {}), ...(downMs !== undefined ? { downMs } : {}) };
    for (const l of this.listeners) l(change);
  }

  private scheduleProbe(attempt: number): void {
    const probe = this.opts.probe;
    if (!probe || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      probe().then(
        () => {
          if (this.current !== 'unavailable' || this.closed) return;
          this.set('ok', undefined, Math.round(performance.now() - this.since));
        },
        () => {
          if (this.current === 'unavailable') this.scheduleProbe(attempt + 1);
        },
      );
    }, probeDelay(attempt, this.opts.initialMs, this.opts.maxMs));
    // The probe keeps nothing alive: a node that is stopping is not held up by it.
    this.timer.unref();
  }

  private stopProbe(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * inbound/anvil — per-client rate limits, after Postfix's anvil(8): how many
 * connections and messages each client IP, and how many recipients each AUTH
 * user, started in the current minute, against `[inbound]` limits.
 *
 * Pure counters on an injected clock: `hit(kind, key)` counts one event and
 * says whether it is over the limit. Like anvil, each key has a fixed window
 * (a minute from its first event, `anvil_rate_time_unit`); the count starts
 * again when the window ends. Every event is counted, refused ones too, so a
 * client hammering past its limit stays refused until its window ends.
 * Memory is bounded: expired windows are swept as the table grows, and past
 * MAX_KEYS the oldest key is dropped (forgetting a client errs on letting it in).
 *
 * It does not decide who is exempt (the caller skips [relay] networks), what
 * is answered (421 4.7.0 at connect, 450 4.7.1 at MAIL/RCPT, from the error
 * registry) or count metrics (the caller does).
 */

export type RateKind = 'connections' | 'messages' | 'recipients';

/** Per-minute limits; 0 turns one off. */
export interface RateLimits {
  readonly connections: number;
  readonly messages: number;
  readonly recipients: number;
}

export interface RateVerdict {
  readonly over: boolean;
  /** Events of this kind for this key in the current window, this one included. */
  readonly count: number;
  readonly limit: number;
}

const WINDOW_MS = 60_000;
const MAX_KEYS = 100_000;

interface Window {
  start: number;
  count: number;
}

export class Anvil {
  private readonly windows = new Map<string, Window>();
  private lastSweep = Number.NEGATIVE_INFINITY;

  /** `limits` is read on every hit, so a reloaded configuration applies at once. */
  constructor(private readonly limits: () => RateLimits, private readonly clock: () => number) {}

  /** Counts one event for `key` (a client IP, or an AUTH user for recipients). */
  hit(kind: RateKind, key: string): RateVerdict {
    const limit = this.limits()[kind];
    if (limit <= 0) return { over: false, count: 0, limit };
    const now = this.clock();
    const id = `${kind} ${key}`;
    let w = this.windows.get(id);
    if (!w || now - w.start >= WINDOW_MS) {
      if (!w) this.makeRoom(now);
      w = { start: now, count: 0 };
      this.windows.set(id, w);
    }
    w.count++;
    return { over: w.count > limit, count: w.count, limit };
  }

  /** Keys currently tracked (for tests and the bound). */
  get size(): number {
    return this.windows.size;
  }

  private makeRoom(now: number): void {
    if (this.windows.size < MAX_KEYS) return;
    // A full sweep at most once per window, so a flood of new addresses costs O(1) per event.
    if (now - this.lastSweep >= WINDOW_MS) {
      this.lastSweep = now;
      for (const [id, w] of this.windows) if (now - w.start >= WINDOW_MS) this.windows.delete(id);
    }
    if (this.windows.size >= MAX_KEYS) this.windows.delete(this.windows.keys().next().value!);
  }
}

/**
 * scheduler/retry — when a recipient is tried again after a temporary failure
 * of its own, as a pure function (the random source is a parameter, so
 * schedules are tested without sleeping): retry_initial, doubling per counted
 * attempt, capped at retry_max, ±10 % jitter (so a burst of failures does not
 * return as a burst). A recipient waiting on its destination's backoff does
 * not spend its own retry steps (destination/backoff decides that wait).
 */

export interface RetrySettings {
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

/** Delay after the `attempts`-th counted attempt (1 = the first try failed). */
export function retryDelay(attempts: number, s: RetrySettings, random: () => number): number {
  const base = Math.min(s.retryMaxMs, s.retryInitialMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
  return Math.round(base * (0.9 + 0.2 * random()));
}


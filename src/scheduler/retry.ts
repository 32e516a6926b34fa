/**
 * scheduler/retry — when to try again: a recipient's own retry schedule and
 * a destination's health, as pure functions of their inputs (the clock and
 * the random source are parameters, so schedules are tested without sleeping).
 *
 * Recipient: retry_initial, doubling per counted attempt, capped at
 * retry_max, ±10 % jitter (so a burst of failures does not return as a burst).
 * Destination: destination_backoff, doubling per failed probe, capped at
 * destination_backoff_max. A recipient waiting on its destination's backoff
 * does not spend its own retry steps (its lifetime still runs). Whether a
 * connection may open is the DestinationGate's (queue/destination-gate).
 */
import type { DestinationState } from '../queue/model.js';

export interface RetrySettings {
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
}

/** Delay after the `attempts`-th counted attempt (1 = the first try failed). */
export function retryDelay(attempts: number, s: RetrySettings, random: () => number): number {
  const base = Math.min(s.retryMaxMs, s.retryInitialMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
  return Math.round(base * (0.9 + 0.2 * random()));
}

/** A destination after a connection-level failure: into backoff, or its backoff doubled. */
export function destinationFailed(prev: DestinationState | undefined, key: string, now: number, error: string, s: RetrySettings): DestinationState {
  const step = prev && prev.health !== 'ok' && prev.backoffMs > 0 ? Math.min(s.backoffMaxMs, prev.backoffMs * 2) : s.backoffMs;
  return {
    key,
    health: prev?.health === 'suspended' ? 'suspended' : 'backoff',
    backoffUntil: now + step,
    backoffMs: step,
    consecutiveFailures: (prev?.consecutiveFailures ?? 0) + 1,
    lastError: error,
    updatedAt: now,
    // What the destination has learned survives its failures.
    ...(prev?.limits ? { limits: prev.limits } : {}),
  };
}

/** A destination after a connection that worked (greeting and EHLO went through). */
export function destinationRecovered(prev: DestinationState | undefined, key: string, now: number): DestinationState {
  return {
    key, health: prev?.health === 'suspended' ? 'suspended' : 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, lastError: undefined, updatedAt: now,
    ...(prev?.limits ? { limits: prev.limits } : {}),
  };
}

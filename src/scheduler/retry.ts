/**
 * scheduler/retry — when to try again: a recipient's own retry schedule and
 * a destination's health, as pure functions of their inputs (the clock and
 * the random source are parameters, so schedules are tested without sleeping).
 *
 * Recipient: retry_initial, doubling per counted attempt, capped at
 * retry_max, ±10 % jitter (so a burst of failures does not return as a burst).
 * Destination: destination_backoff, doubling per failed probe, capped at
 * destination_backoff_max. A recipient waiting on its destination's backoff
 * does not spend its own retry steps (its lifetime still runs).
 */
import type { DestinationRow } from '../queue/model.js';

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
export function destinationFailed(prev: DestinationRow | undefined, key: string, now: number, error: string, s: RetrySettings): DestinationRow {
  const step = prev && prev.health !== 'ok' && prev.backoffMs > 0 ? Math.min(s.backoffMaxMs, prev.backoffMs * 2) : s.backoffMs;
  return {
    key,
    health: prev?.health === 'suspended' ? 'suspended' : 'backoff',
    backoffUntil: now + step,
    backoffMs: step,
    consecutiveFailures: (prev?.consecutiveFailures ?? 0) + 1,
    lastError: error,
    updatedAt: now,
  };
}

/** A destination after a connection that worked (greeting and EHLO went through). */
export function destinationRecovered(prev: DestinationRow | undefined, key: string, now: number): DestinationRow {
  return { key, health: prev?.health === 'suspended' ? 'suspended' : 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, lastError: undefined, updatedAt: now };
}

export type Gate = { readonly open: true; readonly probe: boolean } | { readonly open: false; readonly until: number };

/**
 * May a connection be opened to this destination now? After a backoff ends,
 * exactly one probe goes out; its result decides for everyone waiting.
 */
export function gate(row: DestinationRow | undefined, now: number): Gate {
  if (!row || row.health === 'ok') return { open: true, probe: false };
  if (row.health === 'suspended') return { open: false, until: Number.MAX_SAFE_INTEGER };
  if (row.backoffUntil > now) return { open: false, until: row.backoffUntil };
  return { open: true, probe: true };
}

/**
 * destination/backoff — a destination's health after a connection: into
 * backoff (or further into it) after a connection-level failure, back to ok
 * after a connection that worked, as pure functions of the row before and the
 * clock. destination_backoff, doubling per failed probe, capped at
 * destination_backoff_max. The one place the backoff step is computed.
 *
 * Whether a connection may open is the DestinationGate's
 * (queue/destination-gate); a recipient's own retry schedule is the
 * scheduler's (scheduler/retry).
 */
import type { DestinationState } from '../queue/model.js';

export interface BackoffSettings {
  readonly backoffMs: number;
  readonly backoffMaxMs: number;
}

/** A destination after a connection-level failure: into backoff, or its backoff doubled. */
export function destinationFailed(prev: DestinationState | undefined, key: string, now: number, error: string, s: BackoffSettings): DestinationState {
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

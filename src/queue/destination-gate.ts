/**
 * queue/destination-gate — the only place that decides whether a connection
 * to a destination may open, on one node or many (DESIGN.md, "Queue and
 * gates"). The scheduler asks `acquire(destination, node, …)` and hears
 * *go* (a connection slot), *probe* (you are the one probe after a backoff)
 * or *wait until T*; it gives the slot back with `releaseSlot`.
 *
 * Slots are rows with a lease, so a node that dies holding slots (or the
 * probe) gives them back when the lease runs out, and the cap holds across
 * every node on the database. Health changes are compare-and-set on the
 * row's `generation`: every connection of a wave carries the generation it
 * was granted under, the first failure of the wave moves the row on (one
 * backoff step), and the others find the generation moved and change
 * nothing — whichever node saw them. A rate, when configured, is a token
 * bucket shared the same way.
 *
 * Destination keys are opaque strings (a domain, a route, "local:<domain>",
 * later a set of MX hosts). The row can carry learned limits
 * (`DestinationLimits`), which only ever lower the configured cap.
 *
 * `decideGrant` is the decision itself, pure, shared by every implementation
 * (each runs it inside its own atomic section). Does not compute backoff
 * steps: the scheduler's retry policy (scheduler/retry) makes the next row.
 */
import type { DestinationLimits, DestinationRow, DestinationState } from './model.js';

export interface AcquireRequest {
  readonly destination: string;
  /** The node asking (config node_id). */
  readonly node: string;
  readonly now: number;
  /** The slot's lease: a node that dies holding it loses it then. */
  readonly leaseUntil: number;
  /** The configured cap; a learned limit on the row can only lower it. */
  readonly maxConnections: number;
}

export type WaitReason = 'backoff' | 'suspended' | 'probing' | 'full';

export type Grant =
  | { readonly kind: 'go' | 'probe'; readonly slot: number; readonly generation: number; readonly row: DestinationRow | undefined }
  /** `until`: no slot before then (for 'full' and 'probing': when the earliest live lease runs out, at the latest). */
  | { readonly kind: 'wait'; readonly reason: WaitReason; readonly until: number };

export interface TransitionResult {
  /** False when the row's generation had moved on (another connection of the wave, or another node, got there first). */
  readonly applied: boolean;
  /** The row as it is now. */
  readonly row: DestinationRow | undefined;
}

export interface TokenResult { readonly ok: boolean; readonly until: number }

export interface DestinationInfoRow extends DestinationRow {
  /** Recipients not final for this destination, cluster-wide. */
  readonly queued: number;
  /** Live slots (open connections), cluster-wide. */
  readonly connections: number;
}

export interface DestinationGate {
  acquire(req: AcquireRequest): Promise<Grant>;
  /** Extends a live slot's lease (a worker that holds a slot longer than half of it); false when the slot is gone. */
  renewSlot(slot: number, leaseUntil: number): Promise<boolean>;
  releaseSlot(slot: number): Promise<void>;
  /** On start: every slot this node held before it stopped. Returns how many. */
  releaseNodeSlots(node: string): Promise<number>;
  /** Slots of any node whose lease ran out. Returns how many. */
  releaseExpiredSlots(now: number): Promise<number>;

  /**
   * Compare-and-set: the row becomes `next` (with generation expected + 1) only if its generation is still
   * `expected` (an absent row has generation 0). Failure and recovery both go through here.
   */
  transition(key: string, expected: number, next: DestinationState): Promise<TransitionResult>;
  /** Takes one token of the destination's shared bucket (`count` per `perMs`, starting full). */
  takeToken(key: string, now: number, rate: { readonly count: number; readonly perMs: number }): Promise<TokenResult>;

  getDestination(key: string): Promise<DestinationRow | undefined>;
  /** Every destination with a row, recipients waiting or connections open. */
  listDestinations(): Promise<DestinationInfoRow[]>;
  /** An administrator's overwrite (e.g. "retry now"): the row becomes `row` and its generation moves on. */
  putDestination(row: DestinationState): Promise<void>;
  /**
   * What the destination has learned (scheduler/politeness), shared with every node. Only the limits change:
   * health and generation stay as they are (a learned limit must not void a failure wave's compare-and-set).
   */
  putLimits(key: string, limits: DestinationLimits, now: number): Promise<void>;
}

/** What `acquire` decides, from the row, the destination's live slots and the cap. Pure. */
export type Decision =
  | { readonly kind: 'go' | 'probe' }
  | { readonly kind: 'wait'; readonly reason: WaitReason; readonly until: number };

export interface LiveSlots {
  readonly count: number;
  /** A probe slot is live. */
  readonly probing: boolean;
  /** The earliest lease end among live slots (undefined when none). */
  readonly earliestUntil: number | undefined;
}

export const NEVER = Number.MAX_SAFE_INTEGER;

export function decideGrant(row: DestinationRow | undefined, live: LiveSlots, now: number, maxConnections: number): Decision {
  if (row?.health === 'suspended') return { kind: 'wait', reason: 'suspended', until: NEVER };
  if (row?.health === 'backoff') {
    if (row.backoffUntil > now) return { kind: 'wait', reason: 'backoff', until: row.backoffUntil };
    // The backoff is over: exactly one probe, whose result decides for everyone waiting.
    if (live.probing) return { kind: 'wait', reason: 'probing', until: live.earliestUntil ?? now };
    return { kind: 'probe' };
  }
  const learned = row?.limits?.maxConnections !== undefined && (row.limits.maxConnectionsUntil ?? Infinity) > now ? row.limits.maxConnections : maxConnections;
  const cap = Math.min(maxConnections, learned);
  if (live.count >= cap) return { kind: 'wait', reason: 'full', until: live.earliestUntil ?? now };
  return { kind: 'go' };
}

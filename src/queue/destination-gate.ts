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
 * steps: the scheduler's retry policy (destination/backoff) makes the next row.
 */
import type { DestinationLimits, DestinationRow, DestinationRule, DestinationState, LearnedRate } from './model.js';

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

/** A destination's token bucket as stored (destination_tokens): tokens left at `at`. */
export interface Bucket { readonly tokens: number; readonly at: number }

/**
 * One take from a destination's shared rate (`count` per `perMs`, starting full), as a pure function of the
 * stored bucket: refilled for the time since `at` (never above `count`), one token taken if there is one.
 * Returns the bucket to store and the answer (`until`: when the next token is there). Both queues run it
 * inside their atomic section (an IMMEDIATE transaction; a transaction under the key's advisory lock).
 */
export function takeFromBucket(stored: Bucket | undefined, now: number, rate: { readonly count: number; readonly perMs: number }): { readonly bucket: Bucket; readonly result: TokenResult } {
  let tokens = stored ? Math.min(rate.count, stored.tokens + (Math.max(0, now - stored.at) * rate.count) / rate.perMs) : rate.count;
  const ok = tokens >= 1;
  if (ok) tokens -= 1;
  return { bucket: { tokens, at: now }, result: { ok, until: ok ? now : now + Math.ceil(((1 - tokens) * rate.perMs) / rate.count) } };
}

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
   * `expected` (an absent row has generation 0). Failure and recovery both go through here. Health only: an
   * existing row keeps the limits it has now (`next.limits` is a copy read before, maybe stale: what another
   * node learned meanwhile must survive the wave's failure).
   */
  transition(key: string, expected: number, next: DestinationState): Promise<TransitionResult>;
  /** Takes one token of the destination's shared bucket (`count` per `perMs`, starting full). */
  takeToken(key: string, now: number, rate: { readonly count: number; readonly perMs: number }): Promise<TokenResult>;

  getDestination(key: string): Promise<DestinationRow | undefined>;
  /** The rows whose key starts with `prefix` (a tenant's holds are rows `tenant:…`, destination/tenants), in key order. */
  listRows(prefix: string): Promise<DestinationRow[]>;
  /** Every destination with a row, recipients waiting or connections open. */
  listDestinations(): Promise<DestinationInfoRow[]>;
  /** An administrator's overwrite (e.g. "retry now"): the row becomes `row` and its generation moves on. */
  putDestination(row: DestinationState): Promise<void>;
  /**
   * What the destination has learned (destination/politeness), shared with every node: merged into the row's
   * limits field by field (`mergeLimits`, on the row read and written in one atomic section), so what two
   * nodes learned at once both survive. Only the limits change: health and generation stay as they are (a learned
   * limit must not void a failure wave's compare-and-set).
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
  // A reply rule's suspend, written by whichever node saw the reply, holds for every node until it ends.
  const rulesInForce = (row?.limits?.rules ?? []).filter((r) => r.until > now);
  const suspendedUntil = Math.max(0, ...rulesInForce.filter((r) => r.action === 'suspend' || r.action === 'slow_down').map((r) => r.until));
  if (suspendedUntil > now) return { kind: 'wait', reason: 'suspended', until: suspendedUntil };
  if (row?.health === 'backoff') {
    if (row.backoffUntil > now) return { kind: 'wait', reason: 'backoff', until: row.backoffUntil };
    // The backoff is over: exactly one probe, whose result decides for everyone waiting.
    if (live.probing) return { kind: 'wait', reason: 'probing', until: live.earliestUntil ?? now };
    return { kind: 'probe' };
  }
  const learned = row?.limits?.maxConnections !== undefined && (row.limits.maxConnectionsUntil ?? Infinity) > now ? row.limits.maxConnections : maxConnections;
  const cap = Math.min(maxConnections, learned, ...rulesInForce.map((r) => r.maxConnections ?? Infinity));
  if (live.count >= cap) return { kind: 'wait', reason: 'full', until: live.earliestUntil ?? now };
  return { kind: 'go' };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One learned ceiling: its value, until when it holds (undefined: until changed) and the reply that taught it. */
interface Learned { readonly value: number; readonly until: number | undefined; readonly reply: string | undefined }

/**
 * Of two learned ceilings (the row's and the incoming one), what holds: the stricter value among those still in
 * force (ties: the incoming one, the newer reply), held until the later expiry (none if either has none). The same
 * rule as a single node's reducers, so the cluster concludes what one node would have from both observations:
 * destination/learned-limits (a lower recipient limit replaces a higher one, a new observation restarts the
 * expiry, nothing but expiry raises it) and destination/concurrency's ceiling (min of limit and ceiling, restarted
 * expiry); Politeness.absorb likewise only takes a stricter value. Newest-wins would let a node that has not yet
 * absorbed a stricter ceiling raise it for everyone.
 */
function stricter(row: Learned | undefined, incoming: Learned | undefined, now: number): Learned | undefined {
  const live = [incoming, row].filter((l): l is Learned => l !== undefined && (l.until === undefined || l.until > now));
  if (live.length === 0) return undefined;
  const best = live.reduce((a, b) => (b.value < a.value ? b : a));
  const until = live.some((l) => l.until === undefined) ? undefined : Math.max(...live.map((l) => l.until!));
  return { value: best.value, until, reply: best.reply };
}

const learned = (v: number | undefined, until: number | undefined, reply: string | undefined): Learned | undefined =>
  (v === undefined ? undefined : { value: v, until, reply });

/**
 * What `putLimits` makes of the row's limits and an incoming set, at `now` (pure; both queues run it on the row
 * they read and write in one atomic section — the one implementation of the merge). A field the incoming set does not carry
 * keeps the row's value: a node shares what it knows, not what it does not. Expired values are dropped.
 * - maxConnections / maxRecipients (with their until and reply): `stricter`, above.
 * - rules in force: keyed by their index in `delivery.rules`, each as the trigger that holds longer (the later
 *   `until`, i.e. the newer trigger; ties: the incoming one), as Politeness.absorb takes them.
 * - the adaptive rate: `newerRate` (the later cut wins; from the same cut, the higher — growth — wins).
 * Undefined when nothing is left.
 */
export function mergeLimits(row: DestinationLimits | undefined, incoming: DestinationLimits, now: number): DestinationLimits | undefined {
  const out: Mutable<DestinationLimits> = {};
  const c = stricter(learned(row?.maxConnections, row?.maxConnectionsUntil, row?.connectionsReply),
    learned(incoming.maxConnections, incoming.maxConnectionsUntil, incoming.connectionsReply), now);
  if (c) {
    out.maxConnections = c.value;
    if (c.until !== undefined) out.maxConnectionsUntil = c.until;
    if (c.reply !== undefined) out.connectionsReply = c.reply;
  }
  const k = stricter(learned(row?.maxRecipients, row?.maxRecipientsUntil, row?.recipientsReply),
    learned(incoming.maxRecipients, incoming.maxRecipientsUntil, incoming.recipientsReply), now);
  if (k) {
    out.maxRecipients = k.value;
    if (k.until !== undefined) out.maxRecipientsUntil = k.until;
    if (k.reply !== undefined) out.recipientsReply = k.reply;
  }
  const rules = new Map<number, DestinationRule>();
  for (const r of [...(row?.rules ?? []), ...(incoming.rules ?? [])]) {
    if (r.until <= now) continue;
    const held = rules.get(r.index);
    if (!held || r.until >= held.until) rules.set(r.index, r);
  }
  if (rules.size > 0) out.rules = [...rules.values()].sort((a, b) => a.index - b.index);
  const rate = newerRate(row?.rate, incoming.rate, now);
  if (rate) out.rate = rate;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Of two adaptive rates in force, the one that holds (pure; Politeness.absorb decides the same way): the one
 * descending from the later cut (a node that has not seen a cut must not undo it with growth from before it);
 * from the same cut, the higher (each node grows it with its own deliveries); expired ones dropped.
 */
export function newerRate(a: LearnedRate | undefined, b: LearnedRate | undefined, now: number): LearnedRate | undefined {
  const live = [a, b].filter((r): r is LearnedRate => r !== undefined && r.until > now);
  if (live.length < 2) return live[0];
  const [x, y] = live as [LearnedRate, LearnedRate];
  if (x.cutAt !== y.cutAt) return x.cutAt > y.cutAt ? x : y;
  return y.perMinute >= x.perMinute ? y : x;
}

/**
 * queue/recipient-queue — the recipients waiting for delivery, and the work
 * done on them: claims with leases, outcomes, flush/hold, and the sweeps'
 * claims (expiry, delay warnings, reports).
 *
 * Every piece of work is claimed before it is done, with a lease owned by a
 * stable node id, so that on several nodes over one database each recipient
 * is attempted by one node at a time (I2) and each report is sent by one
 * node. A lease that runs out (its node died) makes the work available again;
 * a node on start releases its OWN leases only, never another live node's.
 * An outcome for a recipient already final is ignored (I1).
 *
 * Does not decide retry times, backoff or DSN contents (callers pass those
 * in), and does not decide whether a connection may open (DestinationGate).
 */
import type {
  AttemptRow, MessageId, MessageRow, RecipientOutcome, RecipientRow, RecipientState,
} from './model.js';

export interface ClaimRequest {
  readonly now: number;
  /** Most recipients to claim. */
  readonly limit: number;
  /** Who claims (the node id); the lease is theirs until leaseUntil. */
  readonly owner: string;
  readonly leaseUntil: number;
  /** Destinations not to claim from (work already waiting here, no slot to be had …). */
  readonly excludeDestinations?: readonly string[];
  /**
   * Most messages claimed per destination (route key), shared by its tenants in turns (queue/fair-claim); no
   * cap when absent. A small cap lets a tenant queued later through before another's backlog.
   */
  readonly perDestination?: number;
  /** Tenants not to claim from anywhere (suspended everywhere, over their rate: destination/tenants). */
  readonly excludeTenants?: readonly string[];
  /** (route key, tenant) pairs not to claim from (a tenant suspended at a destination or provider). */
  readonly excludePairs?: readonly { readonly destination: string; readonly tenant: string }[];
  /** Tenants' weights in the claim's turns (`[tenants.NAME] weight`, queue/fair-claim); absent ones weigh 1. */
  readonly weights?: Readonly<Record<string, number>>;
  /**
   * Which due tenant of a destination goes first in each turn (a safe integer ≥ 0, modulo their number; default 0:
   * in name order). Moved on at each claim, so tenants beyond a destination's share are not always the ones left out.
   */
  readonly rotation?: number;
}

/** Waiting (non-final) recipients of one tenant under one route key: `halcyon destinations` per tenant. */
export interface TenantCount {
  /** The route key they are queued under. */
  readonly destination: string;
  readonly tenant: string;
  readonly queued: number;
}

/** A claim of the sweeps: rows of messages received before `receivedBefore`, leased to `owner`. */
export interface SweepClaim {
  readonly now: number;
  readonly limit: number;
  readonly owner: string;
  readonly leaseUntil: number;
}

export interface QueueFilter {
  readonly domain?: string;
  readonly state?: RecipientState;
  readonly olderThan?: number; // received before this epoch ms
  readonly messageId?: MessageId;
  readonly limit?: number;
  /** A search: messages whose queue id, sender, Message-ID or a recipient address contains `text` (any case). */
  readonly search?: { readonly text: string };
}

export interface QueueCounts {
  readonly messages: number;
  readonly byState: Readonly<Record<RecipientState, number>>;
}

/** Waiting recipients of one domain, destination and hold state whose message is in one age bucket (`queue shape`). */
export interface ShapeCount {
  /** The recipient's domain, lower case. */
  readonly domain: string;
  /** The destination key the recipient is queued under. */
  readonly destination: string;
  readonly held: boolean;
  /** Index of the first bound of `boundsMs` above the message's age; `boundsMs.length` when none is. */
  readonly bucket: number;
  readonly n: number;
}

/** Messages with a waiting recipient, of one sender domain and hold state, in one age bucket (`queue shape --by sender-domain`). */
export interface SenderShapeCount {
  /** The part of the sender after its last `@`, lower case; '' for the null sender (`<>`: DSNs). */
  readonly senderDomain: string;
  readonly held: boolean;
  /** As ShapeCount's. */
  readonly bucket: number;
  /** Messages (each has one sender), as qshape -s counts them. */
  readonly n: number;
}

export interface RecipientQueue {
  getRecipients(id: MessageId): Promise<RecipientRow[]>;
  getAttempts(id: MessageId): Promise<AttemptRow[]>;
  listMessages(filter: QueueFilter): Promise<{ message: MessageRow; recipients: RecipientRow[] }[]>;
  counts(): Promise<QueueCounts>;
  /**
   * Non-final recipients (queued, inflight, deferred) counted by domain, destination, hold and the age of
   * their message at `now` in buckets of `boundsMs` (ascending upper bounds, safe integers): one aggregate
   * read, so a dashboard polling the queue's shape costs no listing of every message.
   */
  shapeCounts(now: number, boundsMs: readonly number[]): Promise<ShapeCount[]>;
  /**
   * Messages with at least one non-final recipient, counted by sender domain, hold and age bucket at
   * `now` (as shapeCounts): qshape -s, one aggregate read.
   */
  senderShapeCounts(now: number, boundsMs: readonly number[]): Promise<SenderShapeCount[]>;
  /** Non-final recipients of messages that name a tenant, counted by route key and tenant (one aggregate read), ordered by both. */
  tenantCounts(): Promise<TenantCount[]>;

  /**
   * Claims due recipients: state queued or deferred, nextAttemptAt ≤ now, the
   * message not held, the destination not in backoff past now, not excluded.
   * Claimed recipients become `inflight` with a lease (I2). Fair between tenants
   * within each destination (queue/fair-claim): the tenants due there take turns,
   * a message each; ordered by that turn, then nextAttemptAt, then id, so a
   * message's recipients come together and a single tenant's in due order. Two
   * claimers at once never get the same recipient.
   */
  claimDue(req: ClaimRequest): Promise<RecipientRow[]>;
  /** Extends the lease of recipients still `inflight` and leased to `owner`; returns the ids that still are. */
  renewLeases(ids: readonly number[], owner: string, leaseUntil: number): Promise<number[]>;
  /**
   * Gives claimed recipients back without an attempt (no slot could be had, the destination went into
   * backoff): due again at `nextAttemptAt`, no attempt counted, no history row, the last reply kept.
   * Only rows still leased to `owner`. Returns how many.
   */
  unclaim(ids: readonly number[], owner: string, nextAttemptAt: number): Promise<number>;
  /** Any node's leases that ran out (their worker died) become due again. Returns how many. (A report claim that ran out is free to claim again as it is.) */
  releaseExpiredLeases(now: number): Promise<number>;
  /** On start: this node's leases (from before it stopped) become due again. Never another node's. */
  releaseNodeLeases(owner: string, now: number): Promise<number>;

  /**
   * Durably applies outcomes (and appends them to the attempt history) in one commit, only to recipients
   * in flight and still leased to `owner`: whoever records an outcome claimed the recipient first (a
   * lease lost to another node, a row never claimed, a final state are all left as they are: I1, I2).
   * Returns the ids applied.
   */
  recordOutcomes(outcomes: readonly RecipientOutcome[], now: number, owner: string): Promise<number[]>;

  /** Earliest nextAttemptAt among claimable recipients, for the scheduler's sleep. */
  nextDueAt(): Promise<number | undefined>;
  /**
   * A destination went into backoff until `until`: its waiting recipients become due then, not before
   * (no attempt counted, no history row). At most `limit` rows per call (all when absent), so a huge
   * backlog is parked in slices that let other queue work through between them. Returns how many moved.
   */
  parkDestination(key: string, until: number, limit?: number): Promise<number>;

  /** Makes deferred recipients due now (optionally for one domain, destination key or message). Returns how many. */
  flush(opts: { domain?: string; messageId?: MessageId; destination?: string; now: number }): Promise<number>;
  setHeld(id: MessageId, held: boolean): Promise<boolean>;

  /**
   * Claims (as `inflight`) the waiting (queued or deferred) recipients of one message, whatever their due
   * time or their destination's health: what an administrator acts on (a bounce). A recipient in flight
   * is left to its delivery; a final one is left as it is.
   */
  claimWaiting(id: MessageId, claim: Omit<SweepClaim, 'limit'>): Promise<RecipientRow[]>;
  /** Claims (as `inflight`) non-final, unclaimed recipients of messages received before `receivedBefore`, for expiry. */
  claimExpirable(receivedBefore: number, claim: SweepClaim): Promise<RecipientRow[]>;
  /**
   * Claims deferred recipients of messages received before `receivedBefore` with no delay DSN yet and no live
   * report claim. By whole messages, as claimReportsDue (`limit` counts messages): one message's warning is never
   * split between nodes, and none is claimed while one of its recipients is in an attempt.
   */
  claimDelayed(receivedBefore: number, claim: SweepClaim): Promise<RecipientRow[]>;
  /**
   * Claims recipients whose report is still owed: failed or expired with dsnDone unset, and delivered ones
   * that asked NOTIFY=SUCCESS, with no live report claim. Driven by state, not by events in memory, so a
   * crash between an outcome and its DSN loses no DSN; the claim makes one node send it. By whole messages
   * (`limit` counts messages): every owed report of a message in one claim, never split between nodes, and
   * none while a recipient of the message is in an attempt — the failures of one round share one DSN.
   */
  claimReportsDue(claim: SweepClaim): Promise<RecipientRow[]>;
  /** Marks the DSN bookkeeping flags of recipients and drops their report claims. */
  markDsn(recipientIds: readonly number[], what: 'final' | 'delay'): Promise<void>;
  /** Messages whose recipients are all final and whose DSNs are done: removed. Returns ids removed. */
  removeCompleted(limit: number): Promise<MessageId[]>;
}

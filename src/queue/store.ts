/**
 * queue/store — the contract between the queue and everything that uses it.
 *
 * Asynchronous from the first line (DESIGN.md): the default SQLite store could
 * answer synchronously, but a shared-database store for several nodes must drop
 * in without touching inbound or the scheduler.
 *
 * Durability contract: a promise that resolves means the data is on disk
 * (fsync'd). `enqueue` resolving is what lets inbound answer 250; a rejected
 * enqueue leaves nothing behind and inbound answers 452 4.3.1.
 */
import type {
  AttemptRow, DestinationRow, LastReply, MessageId, MessageRow, NewMessage,
  RecipientOutcome, RecipientRow, RecipientState,
} from './model.js';

export interface ClaimRequest {
  readonly now: number;
  /** Most recipients to claim. */
  readonly limit: number;
  /** Who claims (process/node id); the lease is theirs until leaseUntil. */
  readonly owner: string;
  readonly leaseUntil: number;
  /** Destinations not to claim from (at their connection cap, rate-limited …). */
  readonly excludeDestinations?: readonly string[];
}

export interface QueueFilter {
  readonly domain?: string;
  readonly state?: RecipientState;
  readonly olderThan?: number; // received before this epoch ms
  readonly messageId?: MessageId;
  readonly limit?: number;
}

export interface QueueCounts {
  readonly messages: number;
  readonly byState: Readonly<Record<RecipientState, number>>;
}

export interface Store {
  /** A fresh, unique, time-sortable message id (for NewMessage.id). */
  newId(): MessageId;

  /** Durably stores a message and its recipients; resolves with its id. */
  enqueue(msg: NewMessage): Promise<MessageId>;

  getMessage(id: MessageId): Promise<MessageRow | undefined>;
  getBody(id: MessageId): Promise<Buffer>;
  getRecipients(id: MessageId): Promise<RecipientRow[]>;
  getAttempts(id: MessageId): Promise<AttemptRow[]>;
  listMessages(filter: QueueFilter): Promise<{ message: MessageRow; recipients: RecipientRow[] }[]>;
  counts(): Promise<QueueCounts>;

  /**
   * Claims due recipients: state queued or deferred, nextAttemptAt ≤ now, the
   * message not held, the destination not in backoff past now, not excluded.
   * Claimed recipients become `inflight` with a lease (I2). Ordered by
   * nextAttemptAt, then message, so a message's recipients come together.
   */
  claimDue(req: ClaimRequest): Promise<RecipientRow[]>;

  /** Recipients whose lease ran out (their worker died) become due again. Returns how many. */
  releaseExpiredLeases(now: number): Promise<number>;
  /** On start: every `inflight` recipient becomes due again (I1 keeps delivered ones final). */
  releaseAllInflight(now: number): Promise<number>;

  /** Durably applies outcomes (and appends them to the attempt history) in one commit. */
  recordOutcomes(outcomes: readonly RecipientOutcome[], now: number): Promise<void>;

  /** Earliest nextAttemptAt among claimable recipients, for the scheduler's sleep. */
  nextDueAt(): Promise<number | undefined>;

  getDestination(key: string): Promise<DestinationRow | undefined>;
  listDestinations(): Promise<(DestinationRow & { queued: number })[]>;
  putDestination(row: DestinationRow): Promise<void>;
  /**
   * A destination went into backoff until `until`: its waiting recipients become due then, not before
   * (no attempt counted, no history row). Keeps claims and wake-ups from walking over rows that cannot
   * go anywhere. At most `limit` rows per call (all when absent), so a huge backlog is parked in slices
   * that let other queue work through between them. Returns how many moved.
   */
  parkDestination(key: string, until: number, limit?: number): Promise<number>;

  /** Makes deferred recipients due now (optionally for one domain, destination key or message). Returns how many. */
  flush(opts: { domain?: string; messageId?: MessageId; destination?: string; now: number }): Promise<number>;
  setHeld(id: MessageId, held: boolean): Promise<boolean>;
  /** Deletes messages with their recipients and bodies. Returns how many existed. */
  deleteMessages(ids: readonly MessageId[]): Promise<number>;
  /** Marks the DSN bookkeeping flags of recipients. */
  markDsn(recipientIds: readonly number[], what: 'final' | 'delay'): Promise<void>;
  /** Messages whose recipients are all final and whose DSNs are done: removed. Returns ids removed. */
  removeCompleted(limit: number): Promise<MessageId[]>;

  /** Non-final, unclaimed recipients of messages received before `receivedBefore` (for expiry). */
  listExpirable(receivedBefore: number, limit: number): Promise<RecipientRow[]>;
  /** Deferred recipients of messages received before `receivedBefore` with no delay DSN yet. */
  listDelayed(receivedBefore: number, limit: number): Promise<RecipientRow[]>;
  /**
   * Recipients whose report is still owed: failed or expired with dsnDone unset,
   * and delivered ones that asked NOTIFY=SUCCESS. Driven by state, not by
   * events in memory, so a crash between an outcome and its DSN loses no DSN.
   */
  listReportsDue(limit: number): Promise<RecipientRow[]>;

  close(): Promise<void>;
}

export type { LastReply };

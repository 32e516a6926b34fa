/**
 * queue/event-outbox — the events waiting for their sinks (queue/event): rows
 * written by the stores in the transaction of the state change they report,
 * one per event and sink. A sender claims a sink's due rows with a lease owned
 * by its node (as recipients are claimed), so on several nodes each row is
 * being sent by one node at a time and a dead node's rows come back when its
 * lease runs out. A row is deleted only once its sink acknowledged it
 * (`ackEvents`); a failed send makes it due again later (`retryEvents`).
 *
 * Delivery is at least once: a row whose acknowledgment was lost (a crash
 * after the sink took it, a lease that ran out mid-send) is sent again with
 * the same event id. Does not send anything, nor choose the backoff: events/
 * does both.
 */
import type { EventType } from './event.js';

/** One event waiting for one sink. */
export interface OutboxRow {
  /** The row (not the event): what ackEvents and retryEvents take. */
  readonly id: number;
  readonly eventId: string;
  readonly type: EventType;
  /** The event, JSON, exactly as the sink gets it. */
  readonly body: string;
  readonly createdAt: number;
  /** Failed sends so far. */
  readonly attempts: number;
}

export interface OutboxClaim {
  readonly now: number;
  readonly limit: number;
  readonly owner: string;
  readonly leaseUntil: number;
}

/** How many events wait for a sink, and since when. */
export interface OutboxDepth {
  readonly sink: string;
  readonly depth: number;
  /** Of which leased to a sender now. */
  readonly leased: number;
  /** When the oldest waiting event was written (epoch ms). */
  readonly oldestAt?: number;
  /** The most failed sends of any waiting event. */
  readonly maxAttempts: number;
}

export interface EventOutbox {
  /**
   * Claims up to `limit` of `sink`'s rows that are due (next attempt ≤ now) and not under a live lease,
   * oldest first, leased to `owner` until `leaseUntil`. Two claimers at once never get the same row.
   */
  claimEvents(sink: string, claim: OutboxClaim): Promise<OutboxRow[]>;
  /** The sink acknowledged these rows: deleted (whoever holds them). Returns how many existed. */
  ackEvents(ids: readonly number[]): Promise<number>;
  /** A send failed: rows still leased to `owner` are due again at `nextAttemptAt`, one more attempt counted. Returns how many. */
  retryEvents(ids: readonly number[], owner: string, nextAttemptAt: number): Promise<number>;
  /** The depth of every sink that has rows waiting. */
  outboxDepth(): Promise<OutboxDepth[]>;
}

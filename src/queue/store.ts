/**
 * queue/store — the queue as the composition root hands it out: its three
 * parts, each an interface with its own contract (DESIGN.md, "Queue and
 * gates"), and `close`.
 *
 * - MessageStore (queue/message-store): enqueue, get, body, delete;
 * - RecipientQueue (queue/recipient-queue): claims with leases, outcomes,
 *   flush/hold, the sweeps' claims;
 * - DestinationGate (queue/destination-gate): connection slots, probes,
 *   compare-and-set health, a shared rate;
 * - EventOutbox (queue/event-outbox): the events waiting for their sinks;
 * - VerifyCache (queue/verify-cache): what recipient verification probes
 *   learned, shared by every node;
 * - TlsReportStore (queue/tls-reports): the TLS-RPT session counts and the
 *   claims of the daily reports;
 * - SuppressionList (queue/suppression): the addresses not to try again;
 * - IdempotencyStore (queue/idempotency): the injection API's keys (written
 *   by MessageStore.enqueueGroup with their messages);
 * - QueueHealth (queue/health): whether the storage answers at all.
 *
 * Asynchronous from the first line: the SQLite implementation could answer
 * synchronously, but one on a shared database (several nodes) drops in
 * without touching inbound or the scheduler. Each user takes the part it
 * needs (an SMTP session only a MessageStore).
 */
import type { DestinationGate } from './destination-gate.js';
import type { EventOutbox } from './event-outbox.js';
import type { QueueHealth } from './health.js';
import type { MessageStore } from './message-store.js';
import type { RecipientQueue } from './recipient-queue.js';
import type { VerifyCache } from './verify-cache.js';
import type { TlsReportStore } from './tls-reports.js';
import type { SuppressionList } from './suppression.js';
import type { IdempotencyStore } from './idempotency.js';

export interface Queue {
  readonly messages: MessageStore;
  readonly recipients: RecipientQueue;
  readonly gate: DestinationGate;
  /** The recipient events waiting for their sinks (queue/event-outbox). */
  readonly events: EventOutbox;
  /** The recipient verification cache (queue/verify-cache). */
  readonly verifications: VerifyCache;
  /** TLS-RPT session counts and report claims (queue/tls-reports). */
  readonly tlsReports: TlsReportStore;
  /** The addresses a permanent failure (or an operator) put on the suppression list (queue/suppression). */
  readonly suppressions: SuppressionList;
  /** The injection API's idempotency keys: lookups and expiry (queue/idempotency). */
  readonly idempotency: IdempotencyStore;
  /** Whether the storage can be used now (ok, unavailable for a while, failed for good): queue/health. */
  readonly health: QueueHealth;
  /** Writes what waits and closes; `deadlineMs` bounds the wait where an implementation has one to bound. */
  close(deadlineMs?: number): Promise<void>;
}

export type { DestinationGate } from './destination-gate.js';
export type { MessageStore } from './message-store.js';
export type { ClaimRequest, QueueCounts, QueueFilter, RecipientQueue, SenderShapeCount, ShapeCount, SweepClaim } from './recipient-queue.js';

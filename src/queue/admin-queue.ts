/**
 * queue/admin-queue — the part of the queue an administrator's operations
 * (http/admin: the admin API, the dashboard, the CLI on a stopped server)
 * may use: reads of messages, recipients and destinations; flush, hold,
 * delete; a destination's reset; a tenant's suspensions; the suppression list; and a bounce, which claims the waiting
 * recipients of a message before it records their failure — never a
 * recipient in flight.
 *
 * A narrowing of queue/store's `Queue` (every queue is one), so the admin
 * side cannot claim due work, release leases, take slots or record an
 * outcome for a recipient it did not claim. It adds no behaviour.
 */
import type { DestinationGate } from './destination-gate.js';
import type { MessageStore } from './message-store.js';
import type { RecipientQueue } from './recipient-queue.js';
import type { SuppressionList } from './suppression.js';
import type { IdempotencyStore } from './idempotency.js';

export interface AdminQueue {
  readonly messages: Pick<MessageStore, 'getMessage' | 'getBody' | 'deleteMessages'>;
  readonly recipients: Pick<RecipientQueue,
    | 'getRecipients' | 'getAttempts' | 'listMessages' | 'shapeCounts' | 'senderShapeCounts' | 'tenantCounts'
    | 'flush' | 'setHeld' | 'claimWaiting' | 'recordOutcomes'>;
  readonly gate: Pick<DestinationGate, 'getDestination' | 'listDestinations' | 'putDestination' | 'listRows' | 'putLimits'>;
  /** The suppression list, whole: operators list, add, remove, import and export it (http/admin-suppression). */
  readonly suppressions: SuppressionList;
  /** The injection API reads its idempotency keys (they are written with their messages, through intake). */
  readonly idempotency: Pick<IdempotencyStore, 'getIdempotency'>;
}

/**
 * queue/message-store — the messages of the queue: what was accepted, its
 * envelope and its body, kept until every recipient is settled.
 *
 * Durability contract: a promise that resolves means the data is durable
 * (fsync'd, or committed with synchronous_commit on a shared database).
 * `enqueue` resolving is what lets inbound answer 250; a rejected enqueue
 * leaves nothing behind and inbound answers 452 4.3.1 (451 4.3.0 when the
 * queue cannot be reached at all).
 *
 * Does not know recipients' states or destinations' health: those are
 * RecipientQueue's and DestinationGate's (queue/recipient-queue,
 * queue/destination-gate). KumoMTA's `Spool {load, store, remove}` is the size.
 */
import { HalcyonError } from '../errors.js';
import type { GroupCommit } from './group-commit.js';
import type { IdempotencyRecord } from './idempotency.js';
import type { MessageId, MessageRow, NewMessage } from './model.js';

/** One item of an enqueue's group commit: its messages, each with its id, and the idempotency key stored with them. */
export interface EnqueueUnit {
  readonly messages: readonly (NewMessage & { readonly id: MessageId })[];
  readonly key?: IdempotencyRecord;
}

/** The body bytes of a unit (for the group commit's batch size). */
export const unitBytes = (u: EnqueueUnit): number => u.messages.reduce((n, m) => n + m.body.length, 0);

/**
 * The checks and ids of an enqueue, and its one group-commit entry: what `enqueue` and `enqueueGroup`
 * do alike on SQLite and PostgreSQL (each store then writes its batches its own way).
 */
export async function addEnqueueUnit(
  commits: GroupCommit<EnqueueUnit>, closed: boolean, nextId: () => MessageId, msgs: readonly NewMessage[], key?: IdempotencyRecord,
): Promise<MessageId[]> {
  if (closed) throw new HalcyonError('HAL_ERR_QUEUE_WRITE', 'queue is closed');
  if (msgs.some((m) => m.recipients.length === 0)) throw new RangeError('a message needs at least one recipient');
  if (msgs.length === 0 && !key) throw new RangeError('an enqueue needs a message or a key');
  const messages = msgs.map((m) => ({ ...m, id: m.id ?? nextId() }));
  await commits.add(messages[0]?.id ?? `key:${key!.token}:${key!.key}`, { messages, ...(key ? { key } : {}) });
  return messages.map((m) => m.id);
}

export interface MessageStore {
  /** A fresh, unique, time-sortable message id (for NewMessage.id). Synchronous: the Received header names it. */
  newId(): MessageId;
  /**
   * Durably stores a message, its recipients and its body in one commit; resolves with its id.
   * `handOver`: the caller never touches `msg.body` again, so a store in another thread may take
   * the body's memory instead of copying it (the caller's Buffer is then empty).
   */
  enqueue(msg: NewMessage, opts?: { readonly handOver?: boolean }): Promise<MessageId>;
  /**
   * Durably stores several messages (each with its recipients and body) and, when given, an idempotency
   * key row (queue/idempotency) in ONE commit: all of it or nothing. Resolves with the messages' ids in
   * order. A key whose row is already stored and younger than IDEMPOTENCY_TTL_MS (measured from the new
   * row's createdAt) rejects with HAL_ERR_IDEMPOTENCY_TAKEN and stores nothing; an older row is replaced.
   * `msgs` may be empty when `key` is given (a request that queued nothing still has its answer kept).
   */
  enqueueGroup(msgs: readonly NewMessage[], key?: IdempotencyRecord, opts?: { readonly handOver?: boolean }): Promise<MessageId[]>;
  getMessage(id: MessageId): Promise<MessageRow | undefined>;
  /** The stored body; rejects with HAL_ERR_QUEUE_NOT_FOUND when the message is gone. */
  getBody(id: MessageId): Promise<Buffer>;
  /**
   * The message and its body together, as a delivery needs them: one request to the queue thread, one statement
   * on a shared database, where getMessage and getBody take two. Undefined when the message is gone.
   */
  getForDelivery(id: MessageId): Promise<{ readonly message: MessageRow; readonly body: Buffer } | undefined>;
  /** Deletes messages with their recipients and bodies. Returns how many existed. */
  deleteMessages(ids: readonly MessageId[]): Promise<number>;
}

/**
 * queue/sqlite/worker-protocol — the messages between the server's threads and the
 * queue thread (queue/sqlite/worker-store ↔ queue/sqlite/store-worker): a closed union of
 * requests, one per asynchronous method of MessageStore, RecipientQueue,
 * DestinationGate, EventOutbox, VerifyCache, TlsReportStore and
 * SuppressionList and IdempotencyStore (plus `close`), each with its argument and result types
 * derived from those interfaces, so the two sides cannot drift apart and no
 * method is ever looked up by a name in a string.
 *
 * Plus `attach`: the port of a session worker (app/session-workers), whose
 * requests the queue thread then answers on that port, in the same turns.
 *
 * Types only, and the guards that tell a list from a single message and an attach from a request.
 */
import type { DestinationGate } from '../destination-gate.js';
import type { MessageStore } from '../message-store.js';
import type { RecipientQueue } from '../recipient-queue.js';
import type { EventOutbox } from '../event-outbox.js';
import type { VerifyCache } from '../verify-cache.js';
import type { TlsReportStore } from '../tls-reports.js';
import type { SuppressionList } from '../suppression.js';
import type { IdempotencyStore } from '../idempotency.js';
import type { MessagePort } from 'node:worker_threads';

/** The methods of T that return a promise, as { args, result }. */
type OpsOf<T> = {
  [K in keyof T as T[K] extends (...a: never[]) => Promise<unknown> ? K : never]:
    T[K] extends (...a: infer A) => Promise<infer R> ? { readonly args: A; readonly result: R } : never
};

export type QueueOps = OpsOf<MessageStore> & OpsOf<RecipientQueue> & OpsOf<DestinationGate> & OpsOf<EventOutbox> & OpsOf<VerifyCache> & OpsOf<TlsReportStore> & OpsOf<SuppressionList> & OpsOf<IdempotencyStore> & {
  readonly close: { readonly args: []; readonly result: void };
};
export type QueueOp = keyof QueueOps;

export type QueueRequest = {
  [K in QueueOp]: {
    readonly id: number;
    readonly op: K;
    readonly args: QueueOps[K]['args'];
    /** The caller's clock, so a test's fake clock reaches the store. */
    readonly now: number;
  }
}[QueueOp];

/**
 * What one postMessage carries: one request (answer), or those of one event-loop turn (of one queue turn)
 * together — one message across and one wake-up of the other thread instead of one each.
 */
export type QueueRequests = QueueRequest | readonly QueueRequest[];
export type QueueResponses = QueueResponse | readonly QueueResponse[];

/** Whether a message is a list of requests or answers (Array.isArray, narrowing a readonly union). */
export const isList = <T>(m: T | readonly T[]): m is readonly T[] => Array.isArray(m);

/** Sent on the queue thread's own port: answer the requests that come over `attach` too. */
export interface QueueAttach { readonly attach: MessagePort }

export const isAttach = (m: QueueRequests | QueueAttach): m is QueueAttach => !Array.isArray(m) && 'attach' in m;

export type QueueResponse =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code?: string; readonly message: string; readonly detail?: string; readonly sqlite?: string } };

/** What the queue thread runs for each op. */
export type QueueHandlers = { readonly [K in QueueOp]: (...args: QueueOps[K]['args']) => Promise<QueueOps[K]['result']> };

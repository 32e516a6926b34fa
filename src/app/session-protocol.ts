/**
 * app/session-protocol — the messages between the main thread and an SMTP
 * session worker (app/session-workers ↔ app/session-worker), over the
 * worker's own port (the queue requests go over a second port, straight to
 * the queue: queue/sqlite/worker-protocol).
 *
 * A worker asks (`ask`, answered by `answer` with the same id) what the node
 * decides: admission, rates, AUTH lockouts, recipient verification. It tells
 * (`tell`, batched per event-loop turn, no answer) what the node counts and
 * logs. The main thread pushes the configuration at a reload, the queue's
 * health at each change, and drain/close. Types only.
 */
import type { MessagePort as WorkerPort } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';
import type { Config } from '../config/schema.js';
import type { Admitted, ListenerSpec } from '../inbound/server.js';
import type { RcptAnswer } from '../inbound/verify-policy.js';

/** What a worker starts with (workerData; `queue` is transferred). */
export interface SessionWorkerData {
  /** 1…N: the worker's number (metrics, logs) and its id lane (queue/ids). */
  readonly index: number;
  readonly lanes: number;
  readonly config: Config;
  readonly specs: readonly ListenerSpec[];
  /** The main thread's log level now (a test's silent logger stays silent). */
  readonly logLevel: string;
  readonly queue: WorkerPort;
}

/** Questions and their answers' types. */
export interface Questions {
  readonly admit: { readonly args: readonly [ip: string, draining: boolean]; readonly result: Admitted };
  readonly messageOver: { readonly args: readonly [ip: string]; readonly result: boolean };
  readonly recipientOver: { readonly args: readonly [user: string]; readonly result: boolean };
  readonly authLockedUntil: { readonly args: readonly [ip: string]; readonly result: number | undefined };
  readonly authFailed: { readonly args: readonly [ip: string]; readonly result: number };
  readonly verifyRecipient: { readonly args: readonly [address: string, domain: string]; readonly result: RcptAnswer };
}
export type Question = keyof Questions;

export type Ask = { [K in Question]: { readonly t: 'ask'; readonly id: number; readonly q: K; readonly args: Questions[K]['args'] } }[Question];

/** Told without an answer: released connections, counts, log lines. */
export type Told =
  | { readonly k: 'release'; readonly ip: string }
  | { readonly k: 'accepted'; readonly tenant: string | undefined }
  | { readonly k: 'rejected'; readonly reason: string }
  | { readonly k: 'connection'; readonly kind: string }
  | { readonly k: 'log'; readonly lines: string };

export type FromWorker =
  | Ask
  | { readonly t: 'tell'; readonly told: readonly Told[] }
  | { readonly t: 'listening'; readonly listening: readonly { kind: string; address: string }[] }
  | { readonly t: 'start_failed'; readonly error: string }
  | { readonly t: 'drained' }
  /** A configuration sent by the main thread is in force (or was refused: the one in force stays). */
  | { readonly t: 'reloaded' };

export type ToWorker =
  | { readonly t: 'answer'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly t: 'answer'; readonly id: number; readonly ok: false; readonly error: string }
  | { readonly t: 'config'; readonly config: Config; readonly logLevel: string }
  | { readonly t: 'health'; readonly trouble: ErrorCode | undefined }
  | { readonly t: 'drain'; readonly deadlineMs: number }
  | { readonly t: 'close' };

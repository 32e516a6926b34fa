/**
 * queue/idempotency — the idempotency keys of the injection API (issue #24,
 * docs/decisions/0013): what a key row holds, how long it counts, and the
 * store interface that reads and expires them.
 *
 * A key row is only ever written by `MessageStore.enqueueGroup`, in the very
 * commit that stores the messages of the request it answers (or alone, when
 * the request queued nothing): so a key exists exactly when its messages do,
 * on every node of a shared queue. A second enqueue with a key already stored
 * (and younger than IDEMPOTENCY_TTL_MS) is refused whole with
 * HAL_ERR_IDEMPOTENCY_TAKEN; on PostgreSQL a concurrent one waits on the
 * first's uncommitted row and is then refused, or takes the key when the
 * first rolled back.
 *
 * Pure types and constants; the stores are sqlite/idempotency and
 * pg/idempotency. Does not decide what a response is (http/inject does).
 */

/** How long a key answers with its first response; older rows are replaced and expired. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/** What the request stored under the key made: messages queued, or a refusal of every recipient. */
export type IdempotencyState = 'accepted' | 'rejected';

export interface IdempotencyRecord {
  /** The name of the API token that sent the request ("anonymous" on an open loopback listener): keys are per token. */
  readonly token: string;
  /** The client's Idempotency-Key header. */
  readonly key: string;
  /** SHA-256 (hex) of the request as parsed: the same key with another body is refused (422). */
  readonly bodyHash: string;
  readonly state: IdempotencyState;
  /** The HTTP status and JSON body of the first response, returned again as they were. */
  readonly status: number;
  readonly response: string;
  readonly createdAt: number;
}

export interface IdempotencyStore {
  /** The key's row when one was stored at or after `since` (older rows count as gone). */
  getIdempotency(token: string, key: string, since: number): Promise<IdempotencyRecord | undefined>;
  /** Deletes rows created before `before` (at most `limit`); returns how many. */
  expireIdempotency(before: number, limit: number): Promise<number>;
}

/** A key row as both stores read and write it. */
export interface RawIdempotency {
  token: string; key: string; body_hash: string; state: string; status: number; response: string; created_at: number;
}

export const IDEMPOTENCY_COLUMNS = 'token, key, body_hash, state, status, response, created_at';

export function toIdempotency(r: RawIdempotency): IdempotencyRecord {
  return {
    token: r.token, key: r.key, bodyHash: r.body_hash, state: r.state as IdempotencyState,
    status: Number(r.status), response: r.response, createdAt: Number(r.created_at),
  };
}

export function idempotencyRow(k: IdempotencyRecord): RawIdempotency {
  return { token: k.token, key: k.key, body_hash: k.bodyHash, state: k.state, status: k.status, response: k.response, created_at: k.createdAt };
}

/**
 * delivery/types — the contract between the scheduler and a transport (SMTP
 * or local mailboxes): a batch of one message's recipients at one
 * destination goes in; per-recipient verdicts come out through `record`,
 * which the transport awaits before using its connection again (a delivered
 * recipient is durable before anything else happens, spec invariant I1).
 */
import type { LastReply, MessageRow, RecipientRow } from '../queue/model.js';
import type { EgressSource } from '../destination/sources.js';

export interface OutboundBatch {
  /** The destination key it goes to; from a source address, the sourced key (`mx:…@ip2`, destination/key). */
  readonly destination: string;
  /** The source address its connection leaves from ([egress], destination/sources); unset → the system's choice. */
  readonly source?: EgressSource;
  /** Recipient domain (all recipients of a batch share it). */
  readonly domain: string;
  readonly message: MessageRow;
  readonly body: Buffer;
  readonly recipients: readonly RecipientRow[];
  /** Most recipients per transaction for this destination now (a learned limit, I6); unset → the configured one. */
  readonly maxRecipients?: number;
}

export type RecipientVerdict =
  | { readonly kind: 'delivered'; readonly reply: LastReply; readonly possibleDuplicate?: false }
  | { readonly kind: 'failed'; readonly reply: LastReply }
  | { readonly kind: 'deferred'; readonly reply: LastReply; readonly possibleDuplicate?: boolean; readonly connectionLevel?: boolean };

export interface BatchResult {
  /**
   * Set when the destination itself failed (every host refused or timed out,
   * 4xx/5xx greeting, required TLS failed, 421, lost connection): the
   * scheduler puts the destination into backoff. Never set for replies to RCPT.
   */
  readonly destinationFailure?: LastReply;
  /** The failure asked for fewer connections (delivery/failure-policy `throttle`): concurrency feedback. */
  readonly throttle?: boolean;
  /** A session to the destination worked (a transaction was answered): positive concurrency feedback. */
  readonly sessionWorked?: boolean;
  /** The lowest recipient limit the destination showed in this call (spec rule 3): what it learns (I6). */
  readonly limitReached?: { readonly accepted: number; readonly reply: LastReply };
}

export type RecordVerdicts = (v: ReadonlyMap<number, RecipientVerdict>) => Promise<void>;

export interface Transport {
  deliver(batch: OutboundBatch, record: RecordVerdicts): Promise<BatchResult>;
  /**
   * Closes the connections to `destination` kept idle for reuse. On a shared queue an idle connection holds
   * no slot of the DestinationGate, so a node gives it up with its last slot (else the cluster's cap leaks).
   */
  closeIdle?(destination: string, count?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * http/admin-api — the contract of the queue operations an operator performs:
 * `AdminApi`, the shapes it takes and returns, and `AdminError` (a code that
 * maps to an HTTP status). Implemented over the queue by http/admin (the
 * admin API's and the CLI's direct backend) and over HTTP by cli/admin-client,
 * so a command does not care whether it talks to a running server or to the
 * file. Holds no behaviour beyond the error's mapping: no queue access, no
 * HTTP, no formatting.
 */
import type { Config } from '../config/schema.js';
import type { PolitenessView } from '../destination/politeness.js';
import { HalcyonError } from '../errors.js';
import type { AttemptRow, DestinationRow, MessageRow, NextTry, RecipientRow, RecipientState, Trace } from '../queue/model.js';
import type { SuppressionEntry } from '../queue/suppression.js';
import type { SuppressRequest, SuppressionView } from './admin-suppression.js';
import type { DestinationTenant, TenantRequest, TenantsReport } from './admin-tenants.js';
import type { TenantHold } from '../queue/tenant-holds.js';
import type { RecentFailures } from './failures.js';
import type { QueueShape, ShapeBy } from './queue-shape.js';
import type { AliasReport } from '../local/alias-source.js';
import type { Throughput } from './throughput.js';
import type { InjectResult } from './inject.js';

export type AdminErrorCode = 'not_found' | 'bad_request' | 'too_big' | 'unavailable' | 'unprocessable' | 'too_many_requests';

export class AdminError extends Error {
  /**
   * `error`: the JSON body's `error` field when more precise than the code (e.g. "too_many_recipients" for a 413);
   * `retryAfter`: seconds for the Retry-After header (a 429's; a 503 has its own).
   */
  constructor(readonly code: AdminErrorCode, message: string, readonly error: string = code, private readonly retryAfter?: number) {
    super(message);
    this.name = 'AdminError';
  }
  get status(): number {
    switch (this.code) {
      case 'not_found': return 404;
      case 'bad_request': return 400;
      case 'too_big': return 413;
      case 'unprocessable': return 422;
      case 'too_many_requests': return 429;
      case 'unavailable': return 503;
    }
  }
  /** Seconds a client should wait before asking again (HTTP Retry-After), for a 503. */
  get retryAfterSeconds(): number | undefined {
    // An unreachable database is probed at 1, 2, 4, 8 s, then every 10 s (queue/health): asking sooner learns nothing.
    return this.code === 'unavailable' ? 10 : this.retryAfter;
  }
}

/**
 * The queue's own trouble as the admin API reports it: 503 (with Retry-After), not a 500 — the request was
 * fine, the queue cannot take it now. Undefined for any other error.
 */
export function queueTroubleError(err: unknown): AdminError | undefined {
  if (!(err instanceof HalcyonError)) return undefined;
  if (err.code === 'HAL_ERR_QUEUE_UNAVAILABLE') return new AdminError('unavailable', `queue database unreachable: ${err.message}; the node retries by itself`);
  if (err.code === 'HAL_ERR_QUEUE_FAILED') return new AdminError('unavailable', `queue storage failed: ${err.message}; stop the server and run 'halcyon queue check'`);
  return undefined;
}

export type ListedRecipient = RecipientRow & { readonly next?: NextTry };
export interface QueueEntry { readonly message: MessageRow; readonly recipients: ListedRecipient[] }
export interface ListFilter {
  readonly domain?: string;
  readonly state?: RecipientState;
  readonly olderThanMs?: number;
  /** A search: messages whose queue id, sender, any recipient address or Message-ID contains it (case-insensitive). */
  readonly q?: string;
  /** At most this many messages (the first by queue id, i.e. the oldest). */
  readonly limit?: number;
}
export interface MessageDetail {
  readonly message: MessageRow;
  /** A few headers of the stored message (Subject, From, To, Cc, Date, Message-ID), unfolded. */
  readonly headers: Record<string, string>;
  readonly recipients: (ListedRecipient & { readonly history: AttemptRow[] })[];
}
/** TLS-RPT (RFC 8460) session counts of a policy domain (MTA-STS mode, or "dane") today (UTC), every node's. */
export interface TlsReport { readonly mode: string; readonly success: number; readonly failure: number; readonly lastFailure?: string }
export interface DestinationInfo extends DestinationRow {
  readonly queued: number;
  readonly connections: number;
  /** The queued keys (recipient domains) known to go to this destination (an MX host set), when there are others than itself. */
  readonly domains?: readonly string[];
  /** Connection and recipient limits now, what was learned and the reply rules in force (a running server only). */
  readonly politeness?: PolitenessView;
  /** Tenants with recipients waiting here (or held here): how many, held and why, over their rate (http/admin-tenants). */
  readonly tenants?: readonly DestinationTenant[];
  /** TLS-RPT counts of the MTA-STS policy domains that go to this destination (a running server only). */
  readonly tlsReports?: readonly (TlsReport & { readonly domain: string })[];
}

/** A message to inject: `content` as text (UTF-8), or `contentBase64` for bytes as they are (8-bit mail in any charset). */
export interface InjectRequest { readonly from: string; readonly to: readonly string[]; readonly content?: string; readonly contentBase64?: string }
export interface HoldTarget { readonly id?: string; readonly domain?: string }
/** A destination that will not take a connection now, and how many of a flush's recipients wait for it. */
export interface BlockedDestination { readonly destination: string; readonly why: 'backoff' | 'suspended'; readonly until: number; readonly recipients: number }
export interface FlushResult {
  /** Recipients that are due now and can go (their destination takes connections, their message is not held). */
  readonly flushed: number;
  /** Destinations whose backoff `force` cleared. */
  readonly reset: string[];
  /** Destinations still closed, and the recipients waiting for them. */
  readonly blocked: BlockedDestination[];
  /** Recipients of a held message (flush by id): they go when it is released. */
  readonly held?: number;
}

export interface AdminApi {
  list(filter: ListFilter): Promise<QueueEntry[]>;
  show(id: string): Promise<MessageDetail>;
  flush(opts: { domain?: string; id?: string; force?: boolean }): Promise<FlushResult>;
  hold(target: HoldTarget, held: boolean): Promise<{ ids: string[] }>;
  remove(ids: readonly string[]): Promise<{ deleted: number }>;
  bounce(id: string): Promise<{ bounced: number; skipped: number }>;
  destinations(): Promise<DestinationInfo[]>;
  resetDestination(key: string): Promise<{ flushed: number }>;
  /** Tenants' suspensions in force, settings and waiting recipients (http/admin-tenants). */
  tenants(): Promise<TenantsReport>;
  suspendTenant(tenant: string, req: TenantRequest): Promise<TenantHold>;
  resumeTenant(tenant: string, req: TenantRequest): Promise<{ resumed: number }>;
  inject(req: InjectRequest, trace?: Partial<Trace>): Promise<{ id: string }>;
  /** POST /api/inject/v1 (http/inject): a running server's (or a data_dir's) injection with an optional Idempotency-Key. */
  injectV1?(body: unknown, idempotencyKey?: string, trace?: Partial<Trace>): Promise<InjectResult>;
  /** The configuration in force (a running server's, after any reload), secrets hidden. */
  config(): Promise<Config>;
  /** Throws AdminError 'unavailable' once the queue's storage has failed (a running server only). */
  health?(): Promise<{ ok: true }>;
  /** qshape: waiting recipients per domain (or destination: the MX host set a running server maps it to) × age of their message; held apart. */
  shape(by: ShapeBy): Promise<QueueShape>;
  /** The message as stored (headers with our Received, body), CRLF lines: for `queue cat`. */
  content(id: string): Promise<Buffer>;
  /** Outcomes per minute over the last hour, this node's (a running server only). */
  throughput?(): Promise<Throughput>;
  /** Failures by bounce class over the last hour and the latest ones, this node's (a running server only). */
  failures?(): Promise<RecentFailures>;
  /** `halcyon newaliases`: the running server reads its aliases file again now (a running server only). */
  reloadAliases?(): Promise<AliasReport>;
  /** The suppression list (http/admin-suppression): entries in force, or all with `all`. */
  suppressions(f: { q?: string; limit?: number; all?: boolean }): Promise<SuppressionView[]>;
  suppress(req: SuppressRequest): Promise<SuppressionEntry>;
  unsuppress(addresses: readonly string[]): Promise<{ removed: number }>;
  importSuppressions(csv: string): Promise<{ imported: number; problems: string[] }>;
  exportSuppressions(all?: boolean): Promise<string>;
}

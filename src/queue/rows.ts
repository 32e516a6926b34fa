/**
 * queue/rows — converts between the raw rows of both queue stores (SQLite and
 * PostgreSQL share the column layout) and the
 * queue model: JSON columns parsed, 0/1 columns made booleans, NULLs made
 * absent fields.
 *
 * Does no I/O and holds no SQL beyond the column lists the rows come from.
 */
import type { TlsPolicyType, TlsSessionCount } from './tls-reports.js';
import type { EventType } from './event.js';
import type { OutboxRow } from './event-outbox.js';
import type { VerifyEntry, VerifyVerdict } from './verify-cache.js';
import { suppressionKey, type SuppressionEntry, type SuppressionSource } from './suppression.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import type {
  AttemptRow, DestinationHealth, DestinationLimits, DestinationRow, LastReply, MessageRow, Notify,
  RecipientRow, RecipientState,
} from './model.js';

export interface RawMessage {
  id: string; sender: string; params: string; received_at: number; size: number;
  trace: string; held: number; dsn_for: string | null;
  /** Generated from event_facts (SQLite schema 9, PostgreSQL migration 7). */
  tenant: string | null; campaign: string | null;
}

export interface RawRecipient {
  id: number; message_id: string; address: string; orcpt: string | null; notify: string | null;
  destination: string; state: string; attempts: number; next_attempt_at: number;
  last_reply: string | null; delay_notified: number; dsn_done: number; updated_at: number;
  /** Its message's tenant, '' for none (SQLite schema 11, PostgreSQL migration 10). */
  tenant: string;
}

export interface RawAttempt { recipient_id: number; at: number; state: string; reply: string | null }

export interface RawDestination {
  key: string; health: string; backoff_until: number; backoff_ms: number;
  consecutive_failures: number; last_error: string | null; updated_at: number;
  generation: number; limits: string | null;
}

export const DESTINATION_COLUMNS = 'key, health, backoff_until, backoff_ms, consecutive_failures, last_error, updated_at, generation, limits';

export const MESSAGE_COLUMNS = 'm.id, m.sender, m.params, m.received_at, m.size, m.trace, m.held, m.dsn_for, m.tenant, m.campaign';
export const RECIPIENT_COLUMNS =
  'r.id, r.message_id, r.address, r.orcpt, r.notify, r.destination, r.state, r.attempts, ' +
  'r.next_attempt_at, r.last_reply, r.delay_notified, r.dsn_done, r.updated_at, r.tenant';

export function toMessage(raw: RawMessage): MessageRow {
  return {
    id: raw.id,
    sender: raw.sender,
    params: JSON.parse(raw.params) as MessageRow['params'],
    receivedAt: raw.received_at,
    size: raw.size,
    trace: JSON.parse(raw.trace) as MessageRow['trace'],
    held: raw.held !== 0,
    ...(raw.dsn_for !== null ? { dsnFor: raw.dsn_for } : {}),
    ...(raw.tenant ? { tenant: raw.tenant } : {}),
    ...(raw.campaign ? { campaign: raw.campaign } : {}),
  };
}

export function toRecipient(raw: RawRecipient): RecipientRow {
  return {
    id: raw.id,
    messageId: raw.message_id,
    address: raw.address,
    ...(raw.orcpt !== null ? { orcpt: raw.orcpt } : {}),
    ...(raw.notify !== null ? { notify: JSON.parse(raw.notify) as Notify } : {}),
    destination: raw.destination,
    state: raw.state as RecipientState,
    attempts: raw.attempts,
    nextAttemptAt: raw.next_attempt_at,
    ...(raw.last_reply !== null ? { lastReply: JSON.parse(raw.last_reply) as LastReply } : {}),
    delayNotified: raw.delay_notified !== 0,
    dsnDone: raw.dsn_done !== 0,
    updatedAt: raw.updated_at,
    ...(raw.tenant ? { tenant: raw.tenant } : {}),
  };
}

export function toAttempt(raw: RawAttempt): AttemptRow {
  return {
    recipientId: raw.recipient_id,
    at: raw.at,
    state: raw.state as RecipientState,
    ...(raw.reply !== null ? { reply: JSON.parse(raw.reply) as LastReply } : {}),
  };
}

export function toDestination(raw: RawDestination): DestinationRow {
  return {
    key: raw.key,
    health: raw.health as DestinationHealth,
    backoffUntil: raw.backoff_until,
    backoffMs: raw.backoff_ms,
    consecutiveFailures: raw.consecutive_failures,
    ...(raw.last_error !== null ? { lastError: raw.last_error } : {}),
    updatedAt: raw.updated_at,
    generation: Number(raw.generation),
    ...(raw.limits !== null ? { limits: JSON.parse(raw.limits) as DestinationLimits } : {}),
  };
}

/** The domain of an address, lower-cased; the part after the last '@' (a quoted local part may hold '@'). */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return (at >= 0 ? address.slice(at + 1) : '').toLowerCase();
}

/** An event outbox row as both stores read it (queue/event-outbox). */
export interface RawOutbox { id: number; event_id: string; type: string; body: string; created_at: number; attempts: number }

export function toOutboxRow(raw: RawOutbox): OutboxRow {
  return { id: raw.id, eventId: raw.event_id, type: raw.type as EventType, body: raw.body, createdAt: raw.created_at, attempts: raw.attempts };
}

/** A verification cache row as both stores read it (queue/verify-cache). */
export interface RawVerification { address: string; verdict: string; reply: string; checked_at: number; refresh_at: number; expires_at: number }

export const VERIFICATION_COLUMNS = 'address, verdict, reply, checked_at, refresh_at, expires_at';

export function toVerifyEntry(raw: RawVerification): VerifyEntry {
  return {
    address: raw.address, verdict: raw.verdict as VerifyVerdict, reply: JSON.parse(raw.reply) as LastReply,
    checkedAt: raw.checked_at, refreshAt: raw.refresh_at, expiresAt: raw.expires_at,
  };
}

/** A tls_sessions row as both stores read it (queue/tls-reports). */
export interface RawTlsSession {
  day: string; policy_domain: string; policy_type: string; result_type: string; receiving_mx: string; receiving_ip: string;
  sessions: number; policy_strings: string; mx_hosts: string;
}

export function toTlsSessionCount(r: RawTlsSession): TlsSessionCount {
  return {
    day: r.day, policyDomain: r.policy_domain, policyType: r.policy_type as TlsPolicyType, resultType: r.result_type,
    receivingMx: r.receiving_mx, receivingIp: r.receiving_ip, sessions: Number(r.sessions),
    policyStrings: JSON.parse(r.policy_strings) as string[], mxHosts: JSON.parse(r.mx_hosts) as string[],
  };
}

/** A suppression row as both stores read it (queue/suppression). */
export interface RawSuppression {
  key: string; address: string; class: string; reply: string; source: string; queue_id: string | null; since: number; until: number;
}

export const SUPPRESSION_COLUMNS = 'key, address, class, reply, source, queue_id, since, until';

export function toSuppression(raw: RawSuppression): SuppressionEntry {
  return {
    address: raw.address, class: raw.class as BounceClass, reply: JSON.parse(raw.reply) as LastReply,
    source: raw.source as SuppressionSource, ...(raw.queue_id !== null ? { queueId: raw.queue_id } : {}),
    since: Number(raw.since), until: Number(raw.until),
  };
}

/** An entry as the row both stores write (the class is kept on the reply too, where every reader finds it). */
export function suppressionRow(e: SuppressionEntry): RawSuppression {
  return {
    key: suppressionKey(e.address), address: e.address, class: e.class, reply: JSON.stringify({ ...e.reply, class: e.class }),
    source: e.source, queue_id: e.queueId ?? null, since: e.since, until: e.until,
  };
}

/**
 * queue/event — the recipient events the queue writes to its outbox (DESIGN.md
 * data model, "event"; docs/events.md): what one event holds, which state
 * change makes which type, and which sinks get a copy. Pure functions of their
 * input, no I/O; the stores call them inside the very transaction that changes
 * the state, so an event exists exactly when its change is durable.
 *
 * Does not send anything (events/ does), nor decide outcomes (the scheduler
 * does): it turns a change the queue is committing into the event that says so.
 */
import { randomUUID } from 'node:crypto';
import { EVENT_TYPES } from '../config/schema.js';
import type { LastReply, MessageId, NewMessage, Outcome, TriggeredRule } from './model.js';
import { domainOf } from './rows.js';

export { EVENT_TYPES };
export type EventType = typeof EVENT_TYPES[number];

/** The reply an event reports, in the wire form of docs/events.md. */
export interface EventReply {
  readonly code: number;
  readonly enhanced?: string;
  readonly text: string;
  readonly host?: string;
  /** The command the reply answered ("RCPT TO", "end of DATA", "connect" …). */
  readonly phase?: string;
}

/** One event, as every sink receives it (a JSON object; absent fields are left out). */
export interface HalcyonEvent {
  /** Stable and unique: the same id on every retry, so a receiver can drop duplicates. */
  readonly id: string;
  readonly type: EventType;
  /** ISO 8601, when the state changed. */
  readonly time: string;
  readonly node: string;
  readonly queue_id: MessageId;
  /** The Message-ID header field of the message, when it has one. */
  readonly message_id?: string;
  readonly sender: string;
  readonly recipient?: string;
  readonly destination?: string;
  readonly domain?: string;
  readonly reply?: EventReply;
  /** Attempts made so far (after this one). */
  readonly attempt?: number;
  /** The bounce class of the reply, when one was given. */
  readonly class?: string;
  readonly tenant?: string;
  readonly campaign?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** dsn_sent: the queue id of the report message. */
  readonly dsn_queue_id?: MessageId;
  /** rule_triggered: the rule (as configured) and what it does (suspend, set, bounce). */
  readonly rule?: string;
  readonly action?: string;
}

/** What a message carries for its events, kept on its row from enqueue on (messages.event_facts). */
export interface EventFacts {
  readonly message_id?: string;
  readonly tenant?: string;
  readonly campaign?: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** A sink's name and the event types it takes. */
export interface EventSinkRoute {
  readonly name: string;
  readonly events: readonly EventType[];
}

/** What the queue needs to write events: who writes them, and where they go (none → nothing is written). */
export interface EventRoutes {
  readonly node: string;
  readonly sinks: readonly EventSinkRoute[];
}

export const NO_EVENT_ROUTES: EventRoutes = { node: '', sinks: [] };

/** One outbox row to insert: an event for one sink. */
export interface OutboxInsert {
  readonly sink: string;
  readonly eventId: string;
  readonly type: EventType;
  readonly body: string;
}

/** The facts of a new message (NewMessage's optional fields), as stored on its row. */
export function factsOf(msg: NewMessage): EventFacts {
  return {
    ...(msg.headerMessageId ? { message_id: msg.headerMessageId } : {}),
    ...(msg.tenant ? { tenant: msg.tenant } : {}),
    ...(msg.campaign ? { campaign: msg.campaign } : {}),
    ...(msg.metadata && Object.keys(msg.metadata).length > 0 ? { metadata: msg.metadata } : {}),
  };
}

export function parseFacts(json: string | null | undefined): EventFacts {
  if (!json) return {};
  try {
    return JSON.parse(json) as EventFacts;
  } catch {
    return {};
  }
}

/** The event type of an outcome: a failure is `bounced`, or `suppressed` when the suppression list refused it. */
export function outcomeType(o: Outcome): EventType {
  switch (o.kind) {
    case 'delivered': return 'delivered';
    case 'deferred': return 'deferred';
    case 'expired': return 'expired';
    case 'failed': return o.suppressed === true ? 'suppressed' : 'bounced';
  }
}

export function eventReply(r: LastReply): EventReply {
  return {
    code: r.code, text: r.text,
    ...(r.enhanced ? { enhanced: r.enhanced } : {}),
    ...(r.host ? { host: r.host } : {}),
    ...(r.command ? { phase: r.command } : {}),
  };
}

/** The message side of an event: who sent it, its ids, and what was given at injection. */
export interface EventMessage {
  readonly queueId: MessageId;
  readonly sender: string;
  readonly facts: EventFacts;
}

/** The recipient side of an event. */
export interface EventRecipient {
  readonly address: string;
  readonly destination: string;
  readonly domain: string;
}

function base(type: EventType, at: number, node: string, m: EventMessage): HalcyonEvent {
  return {
    id: randomUUID(), type, time: new Date(at).toISOString(), node,
    queue_id: m.queueId,
    ...(m.facts.message_id ? { message_id: m.facts.message_id } : {}),
    sender: m.sender,
    ...(m.facts.tenant ? { tenant: m.facts.tenant } : {}),
    ...(m.facts.campaign ? { campaign: m.facts.campaign } : {}),
    ...(m.facts.metadata ? { metadata: m.facts.metadata } : {}),
  };
}

function withRecipient(e: HalcyonEvent, r: EventRecipient): HalcyonEvent {
  return { ...e, recipient: r.address, destination: r.destination, domain: r.domain };
}

/** A recipient was queued. */
export function receivedEvent(at: number, node: string, m: EventMessage, r: EventRecipient): HalcyonEvent {
  return withRecipient(base('received', at, node, m), r);
}

/** An outcome was recorded for a recipient; `attempts` is its count after the outcome. */
export function outcomeEvent(at: number, node: string, m: EventMessage, r: EventRecipient, o: Outcome, attempts: number): HalcyonEvent {
  // The bounce class smtp/bounce-rules put on the reply, when it has one.
  const cls = o.reply.class;
  return {
    ...withRecipient(base(outcomeType(o), at, node, m), r),
    reply: eventReply(o.reply), attempt: attempts,
    ...(cls ? { class: cls } : {}),
  };
}

/** A reply from the recipient's destination triggered a reply rule (once per triggering reply); `attempts` as in outcomeEvent. */
export function ruleTriggeredEvent(at: number, node: string, m: EventMessage, r: EventRecipient, reply: LastReply, rule: TriggeredRule, attempts: number): HalcyonEvent {
  return {
    ...withRecipient(base('rule_triggered', at, node, m), r),
    reply: eventReply(reply), attempt: attempts, rule: rule.text, action: rule.action,
    ...(reply.class ? { class: reply.class } : {}),
  };
}

/** A report (DSN) about message `m` was queued as message `dsnId`, to `to` (the original sender). */
export function dsnSentEvent(at: number, node: string, m: EventMessage, dsnId: MessageId, to: string): HalcyonEvent {
  return { ...base('dsn_sent', at, node, m), recipient: to, dsn_queue_id: dsnId };
}

/** One outbox row per sink that takes the event's type. */
export function routeEvents(routes: EventRoutes, events: readonly HalcyonEvent[]): OutboxInsert[] {
  const rows: OutboxInsert[] = [];
  if (routes.sinks.length === 0) return rows;
  for (const e of events) {
    let body: string | undefined;
    for (const s of routes.sinks) {
      if (!s.events.includes(e.type)) continue;
      body ??= JSON.stringify(e);
      rows.push({ sink: s.name, eventId: e.id, type: e.type, body });
    }
  }
  return rows;
}

/** Whether any sink takes events of this type (so a store need not build events nobody wants). */
export function wants(routes: EventRoutes, type: EventType): boolean {
  return routes.sinks.some((s) => s.events.includes(type));
}

/**
 * The events of an enqueue: `received` for each recipient, and `dsn_sent` when the message is a report
 * about another one (`original` reads that message's sender and facts, when it is still queued).
 */
export function enqueueEvents(
  routes: EventRoutes, at: number, m: EventMessage, msg: NewMessage,
  original: (id: MessageId) => MessageFacts | undefined,
): HalcyonEvent[] {
  if (routes.sinks.length === 0) return [];
  const events: HalcyonEvent[] = [];
  if (wants(routes, 'received')) {
    for (const r of msg.recipients) events.push(receivedEvent(at, routes.node, m, { address: r.address, destination: r.destination, domain: domainOf(r.address) }));
  }
  if (msg.dsnFor !== undefined && wants(routes, 'dsn_sent')) {
    const o = original(msg.dsnFor);
    const about: EventMessage = { queueId: msg.dsnFor, sender: o?.sender ?? '', facts: parseFacts(o?.event_facts) };
    events.push(dsnSentEvent(at, routes.node, about, m.queueId, msg.recipients[0]?.address ?? ''));
  }
  return events;
}


/** A message's row as the stores read it for events. */
export interface MessageFacts { readonly id: MessageId; readonly sender: string; readonly event_facts: string | null }
/** A recipient's row as an outcome's UPDATE … RETURNING gives it back. */
export interface ChangedRecipient {
  readonly message_id: MessageId;
  readonly address: string;
  readonly domain: string;
  readonly destination: string;
  readonly attempts: number;
}

/**
 * The events of one recordOutcomes call: the changed rows are noted as they change, and turned into
 * events at the end with their messages' facts, read once per message in the same transaction.
 */
export class OutcomeEvents {
  private readonly changed: { readonly r: ChangedRecipient; readonly o: Outcome; readonly rule?: TriggeredRule }[] = [];

  constructor(private readonly routes: EventRoutes, private readonly at: number) {}

  /** An outcome that changed `r`; `rule`: the reply rule its reply triggered (one more event, rule_triggered, after the outcome's). */
  add(r: ChangedRecipient, o: Outcome, rule?: TriggeredRule): void {
    if (wants(this.routes, outcomeType(o))) this.changed.push({ r, o });
    if (rule && wants(this.routes, 'rule_triggered')) this.changed.push({ r, o, rule });
  }

  /** The messages whose facts rows() needs. */
  messageIds(): MessageId[] {
    return [...new Set(this.changed.map((c) => c.r.message_id))];
  }

  rows(messages: ReadonlyMap<MessageId, MessageFacts>): OutboxInsert[] {
    return routeEvents(this.routes, this.changed.map(({ r, o, rule }) => {
      const raw = messages.get(r.message_id);
      const m: EventMessage = { queueId: r.message_id, sender: raw?.sender ?? '', facts: parseFacts(raw?.event_facts) };
      return rule ? ruleTriggeredEvent(this.at, this.routes.node, m, r, o.reply, rule, r.attempts) : outcomeEvent(this.at, this.routes.node, m, r, o, r.attempts);
    }));
  }
}

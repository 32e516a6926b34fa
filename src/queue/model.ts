/**
 * queue/model — what the queue holds: messages, their recipients and the
 * destinations those recipients go to. Plain data, no behaviour, no I/O.
 *
 * A recipient's state moves queued → inflight → delivered | deferred → … |
 * failed | expired. `delivered`, `failed` and `expired` are final.
 */
import type { BounceClass } from '../smtp/bounce-class.js';

export type MessageId = string;

export type BodyType = '7BIT' | '8BITMIME' | 'BINARYMIME';
export type Ret = 'FULL' | 'HDRS';
/** RFC 3461 NOTIFY: 'NEVER' alone, or a non-empty set of the others. */
export type NotifyWhen = 'SUCCESS' | 'FAILURE' | 'DELAY';
export type Notify = 'NEVER' | readonly NotifyWhen[];

export interface EnvelopeParams {
  /** SIZE declared at MAIL FROM, if any. */
  readonly size?: number;
  readonly body?: BodyType;
  readonly smtputf8: boolean;
  readonly ret?: Ret;
  /** ENVID, already decoded from xtext. */
  readonly envid?: string;
}

/** Who handed us the message: for Received headers, logs and `queue show`. */
export interface Trace {
  readonly clientIp: string;
  readonly clientHelo: string;
  readonly protocol: string; // SMTP, ESMTP, ESMTPS, ESMTPSA, LOCAL, HTTP …
  readonly authUser?: string;
  readonly tls?: string; // e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"
  readonly listener?: string;
}

export interface NewRecipient {
  readonly address: string;
  /** ORCPT as given: "rfc822;user@example.test" (decoded from xtext). */
  readonly orcpt?: string;
  readonly notify?: Notify;
  /**
   * The route key the recipient is queued under: its domain, the route it takes ("route:…") or
   * "local:<domain>", decided without DNS. The destination (host set) it maps to is destination/service's.
   */
  readonly destination: string;
}

export interface NewMessage {
  /** Pre-assigned id (from the store's newId()), so the Received header can name it; else the store makes one. */
  readonly id?: MessageId;
  /** Envelope sender; "" for the null sender <>. */
  readonly sender: string;
  readonly params: EnvelopeParams;
  readonly receivedAt: number; // epoch ms
  readonly trace: Trace;
  /** The whole message as stored: headers (with our Received) and body, CRLF lines, not dot-stuffed. */
  readonly body: Buffer;
  readonly recipients: readonly NewRecipient[];
  /** When set, this message is a DSN about that message (never bounced again). */
  readonly dsnFor?: MessageId;
  /** Its Message-ID header field, for the events about it (intake reads it). */
  readonly headerMessageId?: string;
  /** Who sent it (empty: nobody said), carried by its events. */
  readonly tenant?: string;
  readonly campaign?: string;
  /** Given at injection and echoed in every event about the message. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export type RecipientState = 'queued' | 'inflight' | 'delivered' | 'deferred' | 'failed' | 'expired';
export const FINAL_STATES: readonly RecipientState[] = ['delivered', 'failed', 'expired'];
/** Every state, in a recipient's usual order. */
export const RECIPIENT_STATES: readonly RecipientState[] = ['queued', 'inflight', 'delivered', 'deferred', 'failed', 'expired'];

/** The last reply that decided a recipient's state (or an error we made up, with host unset). */
export interface LastReply {
  readonly code: number;
  readonly enhanced?: string;
  readonly text: string;
  /** "mx.example.test[127.0.0.1]:25" */
  readonly host?: string;
  /** The command the reply answered: "RCPT TO", "end of DATA", "connect" … */
  readonly command?: string;
  /**
   * Made up here, not said by `host`: no reply came (refused, timed out, dropped), and code/enhanced
   * are what we record for that. Shown as "connect to HOST failed: …", never as "HOST said". Without
   * a host, Halcyon deferred the recipient without trying (its destination in backoff): "Halcyon: …".
   */
  readonly ours?: boolean;
  /** Its bounce class (smtp/bounce-class), set by the classifier when the outcome is decided. */
  readonly class?: BounceClass;
}

export interface RecipientRow {
  readonly id: number;
  readonly messageId: MessageId;
  readonly address: string;
  readonly orcpt?: string;
  readonly notify?: Notify;
  /** The route key (see NewRecipient.destination). */
  readonly destination: string;
  readonly state: RecipientState;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastReply?: LastReply;
  /** Set once the delay DSN was sent for this recipient. */
  readonly delayNotified: boolean;
  /** Set once a final DSN (or the decision that none is due) was made. */
  readonly dsnDone: boolean;
  readonly updatedAt: number;
  /** Its message's tenant (MessageRow.tenant), absent when it names none: the claim is fair between tenants. */
  readonly tenant?: string;
}

export interface MessageRow {
  readonly id: MessageId;
  readonly sender: string;
  readonly params: EnvelopeParams;
  readonly receivedAt: number;
  readonly size: number;
  readonly trace: Trace;
  readonly held: boolean;
  readonly dsnFor?: MessageId;
  /** Who sent it (intake decides: the injection API, the AUTH user, or X-Halcyon-Tenant/-Campaign); absent when nobody said. */
  readonly tenant?: string;
  readonly campaign?: string;
}

export type DestinationHealth = 'ok' | 'backoff' | 'suspended';

/**
 * What a destination has learned about itself (issue #11 fills these in): they only ever lower the
 * configured limits. Stored as JSON on the destination's row, shared by every node.
 */
export interface DestinationLimits {
  readonly maxConnections?: number;
  /** `maxConnections` holds until then (a learned ceiling expires; unset → until changed). */
  readonly maxConnectionsUntil?: number;
  /** A learned recipient limit (I6) and until when it holds. */
  readonly maxRecipients?: number;
  readonly maxRecipientsUntil?: number;
  /** The replies that taught them, for `halcyon destinations` on any node. */
  readonly connectionsReply?: string;
  readonly recipientsReply?: string;
  /** Reply rules in force (suspend / set, destination/reply-rules), each until its `until`: every node honours them. */
  readonly rules?: readonly DestinationRule[];
  /** The adaptive message rate (destination/adaptive-rate), cut by a slow_down and grown back by deliveries. */
  readonly rate?: LearnedRate;
}

/** An adaptive rate in force: messages per minute, since the cut it descends from (its generation), until when. */
export interface LearnedRate {
  readonly perMinute: number;
  /** When the cut this rate grew from happened: a later cut wins over any growth from an earlier one. */
  readonly cutAt: number;
  readonly until: number;
  /** The reply that cut it. */
  readonly reply: string;
}

/** A reply rule in force on a destination, with the reply that triggered it last. */
export interface DestinationRule {
  /** Position in `delivery.rules` (0-based). */
  readonly index: number;
  /** slow_down: a pause after the rate was cut (destination/adaptive-rate); it holds like a suspend. */
  readonly action: 'suspend' | 'set' | 'slow_down';
  /** The rule as configured, for display. */
  readonly rule: string;
  readonly until: number;
  readonly since: number;
  /** "421 4.7.0 Too many connections" — the reply as the remote sent it. */
  readonly reply: string;
  readonly maxConnections?: number;
  readonly rate?: { readonly count: number; readonly perMs: number };
}

/** A destination's health as the scheduler writes it (the store keeps the generation). */
export type DestinationState = Omit<DestinationRow, 'generation'>;

export interface DestinationRow {
  readonly key: string;
  readonly health: DestinationHealth;
  /** While health is 'backoff': no connection before this time (epoch ms). */
  readonly backoffUntil: number;
  /** The backoff step now in force (ms); doubles on each failed probe. */
  readonly backoffMs: number;
  readonly consecutiveFailures: number;
  readonly lastError?: string;
  readonly updatedAt: number;
  /** Moves on with every health change: the compare-and-set token of DestinationGate.transition. */
  readonly generation: number;
  readonly limits?: DestinationLimits;
}

/** One attempt's result for one recipient, as the scheduler applies it. */
export type Outcome =
  | { readonly kind: 'delivered'; readonly reply: LastReply }
  | { readonly kind: 'deferred'; readonly reply: LastReply; readonly nextAttemptAt: number; readonly countAttempt: boolean }
  | {
    readonly kind: 'failed'; readonly reply: LastReply;
    /** Put the address on the suppression list until then, in the same commit (queue/suppression decides when). */
    readonly suppressUntil?: number;
    /** The failure IS the suppression list's refusal (no connection was made): its event is `suppressed`. */
    readonly suppressed?: boolean;
  }
  | { readonly kind: 'expired'; readonly reply: LastReply };

export interface RecipientOutcome {
  readonly recipientId: number;
  readonly outcome: Outcome;
  /**
   * The reply rule this outcome's reply triggered, carried by one outcome per triggering reply (scheduler/record):
   * the store writes its `rule_triggered` event in the same commit as the outcome.
   */
  readonly rule?: TriggeredRule;
}

/** A reply rule (`delivery.rules`) as its event names it: the rule as configured, and what it does. */
export interface TriggeredRule {
  readonly text: string;
  /** What it does (`delivery.rules` action: suspend, set, bounce …), as configured. */
  readonly action: string;
}

/** When a waiting recipient is next tried, and why then: its own retry, its destination's backoff or suspension, or a hold on its message. */
export interface NextTry { readonly at: number; readonly why: 'retry' | 'destination backoff' | 'destination suspended' | 'held' }

/** One line of a recipient's history, for `queue show`. */
export interface AttemptRow {
  readonly recipientId: number;
  readonly at: number;
  readonly state: RecipientState;
  readonly reply?: LastReply;
}

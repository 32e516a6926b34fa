/**
 * intake/intake — the one door into the queue for new messages. Every
 * producer hands its finished message here: the SMTP session (MX and
 * submission listeners), the admin API's injection (and so `halcyon
 * sendmail`, which goes through it) and the scheduler's DSNs.
 *
 * What a message gets is decided here, once, by where it came from (the
 * ORIGINS table): the trace header, Message-ID and Date for a local
 * submission, the Authentication-Results of inbound verification (with any
 * forged one naming us removed), a DKIM signature for mail that is ours
 * (intake/dkim), an ARC seal for mail from outside that an alias forwards
 * (intake/arc), the message's tenant and campaign (`senderOf`: given by the
 * injection API, else the X-Halcyon-Tenant / X-Halcyon-Campaign header of an
 * authenticated or local client, else the AUTH user's tenant; the headers
 * are removed from every message), and then the durable queue write. Signing happens before the write, so the queue
 * only ever holds whole signed messages and a retry never signs again.
 * `compose` is the pure part; `Intake.accept` is the thin shell that names
 * the message and writes it, `Intake.acceptGroup` the same for several
 * messages written in one commit with an idempotency key (the injection API).
 *
 * Not here: protocol checks (size, bare newlines, hop count) and the SPF/DKIM/
 * DMARC verification (inbound/authcheck) — those belong to
 * the producer, which answers its client; recipient resolution; logging of
 * the accepted message.
 */
import type { EnvelopeParams, MessageId, NewMessage, NewRecipient, Trace } from '../queue/model.js';
import type { MessageStore } from '../queue/message-store.js';
import type { IdempotencyRecord } from '../queue/idempotency.js';
import { arcPlan, arcSeal, type ArcChain } from './arc.js';
import { authorDomain, dkimSignature, keyFor, type DkimKey } from './dkim.js';
import { claimsAuthserv, headerBlock, headerValue, QUARANTINE_HEADER, receivedHeader, removeHeaders, submissionHeaders } from './headers.js';

/**
 * Where a message comes from:
 * - `smtp`: the MX listener (port 25), from anyone;
 * - `submission`: the submission listener (an authenticated author);
 * - `local`: the admin API's injection and `halcyon sendmail`;
 * - `report`: a DSN Halcyon wrote itself.
 */
export type Origin = 'smtp' | 'submission' | 'local' | 'report';

interface OriginRule {
  /** Prepend our Received header (a report is born here: its own headers are its trace). */
  readonly received: boolean;
  /** Add Message-ID and Date when missing (RFC 6409 §8: a submission server completes the message). */
  readonly complete: boolean;
  /**
   * DKIM-sign (when the From: domain has a key): always, or only when the producer says the
   * message is ours — on the MX listener, mail from an authenticated or [relay] networks client
   * is ours to sign; mail from anyone else is for us to judge, never to sign.
   */
  readonly sign: 'always' | 'if-ours';
}

export const ORIGINS: Readonly<Record<Origin, OriginRule>> = {
  smtp: { received: true, complete: false, sign: 'if-ours' },
  submission: { received: true, complete: true, sign: 'always' },
  local: { received: true, complete: true, sign: 'always' },
  report: { received: false, complete: false, sign: 'always' },
};

export interface Submission {
  readonly origin: Origin;
  /** Envelope sender; "" for the null sender. */
  readonly sender: string;
  readonly params: EnvelopeParams;
  readonly trace: Trace;
  /** The message as the producer has it: CRLF lines, not dot-stuffed, without our headers. */
  readonly content: Buffer;
  readonly recipients: readonly NewRecipient[];
  /** Set when the message is a DSN about that message. */
  readonly dsnFor?: MessageId;
  /** MX listener only: the client authenticated or is in [relay] networks (see OriginRule.sign). */
  readonly ours?: boolean;
  /** MX mail from outside: the verification result ("Authentication-Results: …\r\n", inbound/authcheck). */
  readonly authResults?: string;
  /** MX mail from outside that a DMARC p=quarantine policy puts aside (inbound/dmarc-policy). */
  readonly quarantine?: boolean;
  /** MX mail from outside: the incoming ARC chain's result (with authResults). */
  readonly arcChain?: ArcChain;
  /** Local domains whose aliases sent this message on to a remote address (inbound/envelope). */
  readonly forwardedBy?: readonly string[];
  /** Who sends it, as the injection API was told (wins over the headers and the AUTH user). */
  readonly tenant?: string;
  readonly campaign?: string;
  /** Given at injection: echoed in every event about the message. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** The header fields that name a message's tenant and campaign; intake removes them from every message. */
export const TENANT_HEADER = 'X-Halcyon-Tenant';
export const CAMPAIGN_HEADER = 'X-Halcyon-Campaign';

/** A tenant or campaign as stored and logged: printable, trimmed, at most 128 characters; undefined when empty. */
export function cleanLabel(v: string | undefined): string | undefined {
  const s = v?.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, 128);
  return s ? s : undefined;
}

/**
 * The tenant and campaign of a submission, decided once: what the injection API was given; else, from an
 * authenticated (AUTH) or local (sendmail, the API's raw content) client, its X-Halcyon-Tenant /
 * X-Halcyon-Campaign header; else, for an AUTH user, `tenantOf(user)` (its `[[users]] tenant`, or its name).
 * Anyone else's headers are ignored (and removed by compose).
 */
export function senderOf(sub: Submission, tenantOf: (user: string) => string | undefined = (u) => u): { tenant?: string; campaign?: string } {
  const trusted = sub.origin === 'local' || sub.trace.authUser !== undefined;
  const head = trusted && sub.origin !== 'report' ? headerBlock(sub.content) : '';
  const fromHeader = (name: string) => (head === '' ? undefined : cleanLabel(headerValue(head, name)));
  const tenant = cleanLabel(sub.tenant) ?? fromHeader(TENANT_HEADER) ?? (sub.trace.authUser !== undefined ? cleanLabel(tenantOf(sub.trace.authUser)) : undefined);
  const campaign = cleanLabel(sub.campaign) ?? fromHeader(CAMPAIGN_HEADER);
  return { ...(tenant ? { tenant } : {}), ...(campaign ? { campaign } : {}) };
}

/** What `compose` needs besides the submission: the queue id the trace header names, the time, our name, our keys. */
export interface Stamp {
  readonly id: MessageId;
  readonly now: number;
  readonly hostname: string;
  readonly dkimKeys?: readonly DkimKey[];
}

/** The key that signs this submission, if it is ours to sign and its From: domain has one. */
export function signingKey(sub: Submission, keys: readonly DkimKey[]): DkimKey | undefined {
  if (keys.length === 0) return undefined;
  if (ORIGINS[sub.origin].sign === 'if-ours' && sub.ours !== true) return undefined;
  return keyFor(authorDomain(headerBlock(sub.content)), keys);
}

/** A header block that may hold a field compose() removes (the exact test is removeHeaders' predicate). */
const MAY_CLAIM_US = new RegExp(`^(?:authentication-results|${QUARANTINE_HEADER}|${TENANT_HEADER}|${CAMPAIGN_HEADER})[ \\t]*:`, 'im');
const OURS_ONLY = new Set([QUARANTINE_HEADER, TENANT_HEADER, CAMPAIGN_HEADER].map((h) => h.toLowerCase()));

/**
 * The message as it is queued: the headers this intake prepends (DKIM-Signature
 * first, over everything below it), then the submission's content. Pure but for
 * Message-ID's random part.
 */
export function compose(sub: Submission, stamp: Stamp): Buffer {
  const rule = ORIGINS[sub.origin];
  // RFC 8601 §5: an Authentication-Results that claims to be ours and did not come from us is removed, and so
  // are a quarantine mark and the tenant/campaign headers (read by senderOf first); a report is ours from its first byte.
  // Most mail carries neither field: one scan of the header block spares splitting it into fields for every message.
  const content = sub.origin === 'report' || !MAY_CLAIM_US.test(headerBlock(sub.content)) ? sub.content : removeHeaders(sub.content, (name, value) =>
    (name === 'authentication-results' && claimsAuthserv(value, stamp.hostname)) || OURS_ONLY.has(name));
  let prefix = sub.authResults ?? '';
  if (sub.quarantine) prefix += `${QUARANTINE_HEADER}: dmarc=fail policy.dmarc=quarantine (${stamp.hostname})\r\n`;
  if (rule.received) {
    const only = sub.recipients.length === 1 ? sub.recipients[0]?.address : undefined;
    prefix += receivedHeader({ trace: sub.trace, hostname: stamp.hostname, id: stamp.id, recipient: only, now: stamp.now });
  }
  if (rule.complete) prefix += submissionHeaders(headerBlock(content), stamp.hostname, stamp.now);
  const message = prefix === '' ? content : Buffer.concat([Buffer.from(prefix, 'latin1'), content]);
  const key = signingKey(sub, stamp.dkimKeys ?? []);
  if (!key) return message;
  return Buffer.concat([Buffer.from(dkimSignature(message, key, stamp.now), 'latin1'), message]);
}

export interface IntakeDeps {
  readonly store: Pick<MessageStore, 'newId' | 'enqueue' | 'enqueueGroup'>;
  /** Our name, read at each message (it may follow a reload). */
  readonly hostname: () => string;
  readonly clock: () => number;
  /** The DKIM keys in force (they follow a reload); none → nothing is signed. */
  readonly dkimKeys?: () => readonly DkimKey[];
  /** The ARC sealing keys in force; none → nothing is sealed. */
  readonly arcKeys?: () => readonly DkimKey[];
  /** The tenant of an AUTH user (`[[users]] tenant`, else its name), read at each message; unset → the name. */
  readonly tenantOf?: (user: string) => string | undefined;
}

export interface Accepted {
  readonly id: MessageId;
  /** Size of the message as queued (our headers included). */
  readonly size: number;
  readonly receivedAt: number;
  /** The queued message's Message-ID field (ours when intake added it), for the accepted log line; undefined when it has none. */
  readonly messageId?: string;
  /** When an ARC seal was due: "d=DOMAIN s=SELECTOR cv=…", or why none was made (for the accepted log line). */
  readonly arc?: string;
  /** Who sent it (senderOf), for the accepted log line. */
  readonly tenant?: string;
  readonly campaign?: string;
}

export class Intake {
  constructor(private readonly d: IntakeDeps) {}

  /**
   * Composes the message and queues it durably; resolves once it is on disk.
   * A rejection leaves nothing queued (the store's contract): the producer
   * answers "try again".
   */
  async accept(sub: Submission): Promise<Accepted> {
    const { msg, accepted, handOver } = await this.prepare(sub);
    // A body compose() built is ours alone: the queue thread may take it instead of copying it.
    await this.d.store.enqueue(msg, { handOver });
    return accepted;
  }

  /**
   * Composes several messages and queues them, with the idempotency key row `key` makes from what was
   * accepted (their ids), in ONE durable commit (MessageStore.enqueueGroup): all or nothing. With no
   * submission, only the key row is written. Rejects with HAL_ERR_IDEMPOTENCY_TAKEN when the key is held.
   */
  async acceptGroup(subs: readonly Submission[], key?: (accepted: readonly Accepted[]) => IdempotencyRecord): Promise<Accepted[]> {
    const prepared = await Promise.all(subs.map((s) => this.prepare(s)));
    const accepted = prepared.map((p) => p.accepted);
    await this.d.store.enqueueGroup(prepared.map((p) => p.msg), key?.(accepted), { handOver: prepared.every((p) => p.handOver) });
    return accepted;
  }

  /** The message as it will be queued, named and composed (signed, sealed), and what the producer logs of it. */
  private async prepare(sub: Submission): Promise<{ msg: NewMessage; accepted: Accepted; handOver: boolean }> {
    const now = this.d.clock();
    const id = this.d.store.newId();
    const who = senderOf(sub, this.d.tenantOf);
    let body = compose(sub, { id, now, hostname: this.d.hostname(), dkimKeys: this.d.dkimKeys?.() });
    const plan = arcPlan({
      fromOutside: sub.origin === 'smtp' && sub.ours !== true, forwardedBy: sub.forwardedBy ?? [],
      ...(sub.authResults !== undefined ? { authResults: sub.authResults } : {}), ...(sub.arcChain !== undefined ? { chain: sub.arcChain } : {}),
    }, this.d.arcKeys?.() ?? []);
    let arc: string | undefined;
    if (plan.seal) {
      // A seal that cannot be made never costs the message: it is queued unsealed, and the log line says why.
      const set = await arcSeal(body, plan, now).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
      if (typeof set === 'string') body = Buffer.concat([Buffer.from(set, 'latin1'), body]);
      arc = typeof set === 'string' ? `d=${plan.key.domain} s=${plan.key.selector} cv=${plan.cv}` : `not sealed: ${set instanceof Error ? set.message : 'mailauth made no ARC set'}`;
    }
    // Read before the queue write: a handed-over body is the queue thread's afterwards. Only the header block is
    // searched; control bytes are replaced (the value goes into log lines, a terminal's pretty line among them).
    const messageId = headerValue(headerBlock(body), 'Message-ID')?.slice(0, 998).replace(/[\x00-\x1f\x7f]/g, '?');
    const msg: NewMessage = {
      id, sender: sub.sender, params: sub.params, receivedAt: now, trace: sub.trace, body, recipients: sub.recipients,
      ...(sub.dsnFor === undefined ? {} : { dsnFor: sub.dsnFor }),
      ...(messageId ? { headerMessageId: messageId.trim() } : {}),
      ...who,
      ...(sub.metadata && Object.keys(sub.metadata).length > 0 ? { metadata: sub.metadata } : {}),
    };
    const accepted: Accepted = { id, size: body.length, receivedAt: now, ...(messageId ? { messageId } : {}), ...(arc ? { arc } : {}), ...who };
    return { msg, accepted, handOver: body !== sub.content };
  }
}

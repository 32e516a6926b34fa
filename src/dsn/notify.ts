/**
 * dsn/notify — turns queue rows into the report to enqueue: which recipients
 * of a message go into one DSN, with what action and status, and the
 * submission that carries it (from <>, to the original sender) into intake/.
 *
 * Rules kept here, in one place: no DSN to the null sender; a DSN about a DSN
 * goes to the postmaster once and never further; NOTIFY decides who is named
 * (RFC 3461 §4.1). The scheduler calls this after outcomes are recorded; it
 * does no I/O itself.
 */
import type { Submission } from '../intake/intake.js';
import type { MessageRow, RecipientRow } from '../queue/model.js';
import { buildDsn, wantsDsn } from './report.js';
import type { DsnAction, DsnRecipient } from './types.js';

export interface NotifySettings {
  readonly hostname: string;
  readonly postmaster: string;
  readonly lifetimeMs: number;
  readonly destinationOf: (address: string) => string;
  /** Whether a recipient's destination is local (success → 'delivered', else 'relayed'). */
  readonly isLocal: (destination: string) => boolean;
}

export type ReportEvent = 'failure' | 'delay' | 'success';

function hostName(host: string | undefined): string | undefined {
  if (!host || host === 'local') return undefined;
  // An LMTP Unix socket ("unix:/run/dovecot/lmtp") is a server on this host.
  if (host.startsWith('unix:')) return 'localhost';
  return host.replace(/\[.*$/, '');
}

function dsnRecipient(r: RecipientRow, action: DsnAction, willRetryUntil: number | undefined): DsnRecipient {
  const l = r.lastReply;
  const status = l?.enhanced ?? (action === 'failed' ? '5.0.0' : action === 'delayed' ? '4.0.0' : '2.0.0');
  return {
    address: r.address,
    orcpt: r.orcpt,
    action,
    status,
    remoteMta: hostName(l?.host),
    // Every last reply explains itself, ours (local delivery, expiry, an administrator's bounce) as well as a remote's.
    diagnostic: l ? { code: l.code, enhanced: l.enhanced, text: l.text, command: l.host && l.host !== 'local' ? l.command : undefined, ...(l.class ? { class: l.class } : {}) } : undefined,
    lastAttemptAt: r.updatedAt,
    willRetryUntil,
    hostDescription: l?.host && l.host !== 'local' ? l.host : undefined,
  };
}

export interface PlannedReport {
  /** The DSN to enqueue, or undefined when none is owed (NOTIFY=NEVER, null sender …). */
  readonly message?: Submission;
  /** Recipients whose report question is settled by this plan (mark dsn done). */
  readonly settled: readonly number[];
  /** Set when the DSN itself could not be delivered and nothing more will be sent: log it. */
  readonly dropped?: string;
}

/**
 * Plans one report for `recipients` of `message` (all of the same event).
 * `now` is the report's time.
 */
export function planReport(event: ReportEvent, message: MessageRow, content: Buffer, recipients: readonly RecipientRow[], s: NotifySettings, now: number): PlannedReport {
  const settled = recipients.map((r) => r.id);
  if (message.sender === '') {
    // Null-sender mail (a DSN, say) that failed: the postmaster hears of a failed DSN once, and nothing is
    // ever bounced. Checked before NOTIFY, because a DSN's own recipient carries NOTIFY=NEVER.
    if (event !== 'failure') return { settled };
    const toPostmaster = recipients.some((r) => r.address.toLowerCase() === s.postmaster.toLowerCase());
    if (message.dsnFor !== undefined && !toPostmaster) {
      return { settled, message: build(message, content, recipients, s.postmaster, s, now, event) };
    }
    return { settled, dropped: `undeliverable null-sender message ${message.id} to ${recipients.map((r) => r.address).join(', ')}` };
  }
  const named = recipients.filter((r) => wantsDsn(r.notify, event));
  if (named.length === 0) return { settled };
  return { settled, message: build(message, content, named, message.sender, s, now, event) };
}

function build(message: MessageRow, content: Buffer, named: readonly RecipientRow[], to: string, s: NotifySettings, now: number, event: ReportEvent): Submission {
  const retryUntil = message.receivedAt + s.lifetimeMs;
  const recipients = named.map((r) => {
    const action: DsnAction = event === 'failure' ? 'failed' : event === 'delay' ? 'delayed' : s.isLocal(r.destination) ? 'delivered' : 'relayed';
    return dsnRecipient(r, action, event === 'delay' ? retryUntil : undefined);
  });
  const report = buildDsn({
    reportingMta: s.hostname,
    postmasterFrom: `MAILER-DAEMON@${s.hostname}`,
    to,
    original: { id: message.id, envid: message.params.envid, receivedAt: message.receivedAt, ret: message.params.ret, content },
    recipients,
    now,
  });
  return {
    origin: 'report',
    sender: '',
    params: { smtputf8: report.smtputf8, body: report.bodyType === '7BIT' ? undefined : report.bodyType },
    trace: { clientIp: '127.0.0.1', clientHelo: s.hostname, protocol: 'DSN' },
    content: report.body,
    recipients: [{ address: to, destination: s.destinationOf(to), notify: 'NEVER' }],
    dsnFor: message.id,
  };
}

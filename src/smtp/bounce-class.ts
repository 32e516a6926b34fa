/**
 * smtp/bounce-class — the bounce classes: the small set of names every
 * recipient outcome is labelled with, so that an application or an operator
 * can act on a failure without reading its text. The names are KumoMTA's
 * (its `bounce_classify` crate, built on the IANA registry of enhanced status
 * codes), so a receiver that knows one knows the other; `Delivered` is ours,
 * for the 2xx outcomes every other class leaves unnamed.
 *
 * Also says which classes speak for the address itself and so may put it on
 * the suppression list (issue #22): only these three, whatever the code.
 *
 * Does NOT decide which class a reply has (smtp/bounce-rules does, from the
 * rule file), nor suppress anything (queue/suppression does).
 */

/** Every class, with what it means (docs/operations.md repeats this table). */
export const BOUNCE_CLASSES = {
  Delivered: 'The remote accepted the message for this recipient (2xx).',
  InvalidRecipient: 'The mailbox does not exist or the address is malformed (X.1.1, X.1.3, X.1.4; "user unknown").',
  BadDomain: 'The recipient domain does not exist, accepts no mail (null MX, X.1.10) or its host is wrong (X.1.2).',
  InactiveMailbox: 'The mailbox exists but is disabled, suspended, expired or has moved (X.2.1, X.1.6).',
  InvalidSender: 'The envelope sender was refused as an address (X.1.7, X.1.8, X.7.27, X.1.x at MAIL FROM).',
  QuotaIssues: 'The mailbox or the remote system is full, or the message is too large for it (X.2.2, X.2.3, X.3.1, X.3.4).',
  TooManyRecipients: 'Too many recipients in one transaction or message (X.5.3).',
  NoAnswerFromHost: 'No answer: the connection was refused or timed out, or no reply came in time (X.4.1).',
  BadConnection: 'The connection broke or was closed before the transaction ended (X.4.2, 421).',
  DNSFailure: 'A DNS lookup failed for now (X.4.3): the domain may be fine later.',
  RoutingErrors: 'The mail could not be routed: no next hop, a routing loop, too many hops (X.4.4, X.4.6).',
  RelayDenied: 'The remote does not relay for this domain or this client ("relay access denied").',
  TransientFailure: 'A temporary failure with no more precise class: congestion, greylisting, a busy or resting server (4xx, X.4.5).',
  MessageExpired: 'The message stayed in the queue past its lifetime (X.4.7) without being delivered.',
  ProtocolErrors: 'The SMTP dialogue or the message format broke a rule (X.5.x, X.6.x: syntax, sequence, encoding).',
  BadConfiguration: 'The remote system is misconfigured or not accepting mail (X.3.5, X.3.2, "system not accepting network messages").',
  AuthenticationFailed: 'Sender authentication or TLS requirements failed: SPF, DKIM, DMARC, reverse DNS, required TLS, credentials (X.7.x security codes).',
  PolicyRelated: 'Refused by the remote\'s policy or a rate limit, not for the address\'s sake (X.7.0, X.7.1 without more, X.7.38 and kin).',
  SpamBlock: 'Refused for the sender\'s reputation: its IP or domain is on a block list or sends too much unwanted mail.',
  SpamContent: 'The message itself was judged spam.',
  VirusRelated: 'The message was found to carry a virus or malware.',
  ProhibitedAttachment: 'The message carried an attachment the remote refuses.',
  ContentRelated: 'The message was refused for its content or headers for another reason (malformed, non-compliant headers).',
  Uncategorized: 'No rule matched: the reply is failure all the same, read its text.',
} as const;

export type BounceClass = keyof typeof BOUNCE_CLASSES;

export const BOUNCE_CLASS_NAMES: readonly BounceClass[] = Object.keys(BOUNCE_CLASSES) as BounceClass[];

export function isBounceClass(s: string): s is BounceClass {
  return Object.hasOwn(BOUNCE_CLASSES, s);
}

/**
 * The classes that speak for the address itself: a permanent failure with one of these may suppress the
 * address. Never quota, policy, reputation, authentication, rate limits or content: those say something about
 * the sender, the message or the moment, and suppressing on them (Postal's users saw it: an IP reputation
 * block put good recipients on the list) loses mail that would have been delivered.
 */
export const SUPPRESSING_CLASSES: ReadonlySet<BounceClass> = new Set<BounceClass>(['InvalidRecipient', 'BadDomain', 'InactiveMailbox']);

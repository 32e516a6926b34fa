/**
 * dsn/human — the text/plain first part of a DSN: a friendly intro that
 * depends on the kind of report, then one Postfix-style line per recipient,
 *
 *   <bob@example.test>: host mx.example.test[127.0.0.1]:25 said: 552 5.2.2
 *       Mailbox full (in reply to RCPT TO)
 *
 * All remote text goes through clean() and is wrapped with indented
 * continuation lines, so the part is 7-bit, has no line over 998 characters,
 * and no line a remote chose can start a header or a boundary.
 *
 * Not here: the machine-readable part and the MIME structure (report.ts).
 */

import { clean, rfc5322Date, wrapText } from './fold.js';
import type { DsnAction, DsnKind, DsnRecipient } from './types.js';

export interface HumanInput {
  readonly reportingMta: string;
  readonly kind: DsnKind;
  readonly recipients: readonly DsnRecipient[];
  /** Set when the returned content was cut to headers because of the size cap. */
  readonly capped?: { readonly limit: number; readonly size: number };
  readonly headersTruncated?: boolean;
}

const INTRO: Record<DsnKind, readonly string[]> = {
  failure: [
    "I'm sorry to have to inform you that your message could not",
    'be delivered to one or more recipients. The reasons are given',
    'below, and the message (or its headers) is attached.',
    '',
    'For further assistance, please send mail to postmaster.',
    'If you do so, please include this problem report.',
  ],
  delay: [
    '####################################################################',
    '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
    '####################################################################',
    '',
    'Your message could not be delivered yet to one or more recipients.',
    'The mail system will keep trying; the reasons for the delay so far',
    'are given below.',
  ],
  success: [
    'Your message was successfully delivered to the destination(s)',
    'listed below. If the message was delivered to a mailbox you will',
    'receive no further notifications. Otherwise you may still receive',
    'notifications of mail delivery errors from other systems.',
  ],
};

/** Section titles when one report mixes actions (e.g. some failed, some delivered). */
const SECTION: Record<DsnAction, string> = {
  failed: 'Could not be delivered:',
  delayed: 'Delayed, still being retried:',
  delivered: 'Delivered:',
  relayed: 'Relayed to a system that does not report delivery:',
  expanded: 'Delivered and expanded to further recipients:',
};

const ORDER: readonly DsnAction[] = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'];

/** The whole text of the first part, CRLF lines, 7-bit. */
export function humanText(input: HumanInput): string {
  const lines: string[] = [`This is the mail system at host ${clean(input.reportingMta, 255)}.`, ''];
  lines.push(...INTRO[input.kind], '', '                   The mail system', '');
  const present = ORDER.filter((a) => input.recipients.some((r) => r.action === a));
  for (const action of present) {
    if (present.length > 1) lines.push(SECTION[action], '');
    for (const r of input.recipients.filter((x) => x.action === action)) {
      lines.push(...wrapText(recipientLine(r)));
      if (r.action === 'delayed' && r.willRetryUntil !== undefined) {
        lines.push(`    Will retry until ${rfc5322Date(r.willRetryUntil)}.`);
      }
      lines.push('');
    }
  }
  if (input.capped) {
    lines.push(
      ...wrapText(
        `The original message was ${input.capped.size} bytes, over the limit of ${input.capped.limit} bytes ` +
          'for returned content, so only its headers are attached.',
        78,
        '',
      ),
      '',
    );
  }
  if (input.headersTruncated) {
    lines.push('The original headers were too long and have been shortened.', '');
  }
  return lines.join('\r\n');
}

/** "<bob@example.test>: host mx[1.2.3.4]:25 said: 552 5.2.2 Mailbox full (in reply to RCPT TO)" */
export function recipientLine(r: DsnRecipient): string {
  const who = `<${clean(r.address, 998)}>:`;
  const host = r.hostDescription ?? r.remoteMta;
  const d = r.diagnostic;
  const reply = d ? clean(`${d.code >= 200 && d.code <= 599 ? `${d.code} ` : ''}${d.enhanced ? `${d.enhanced} ` : ''}${d.text}`) : '';
  const inReply = `${d?.command ? ` (in reply to ${clean(d.command, 64)})` : ''}${d?.class && r.action !== 'delivered' && r.action !== 'relayed' && r.action !== 'expanded' ? ` [${clean(d.class, 64)}]` : ''}`;
  if (r.action === 'delivered' || r.action === 'relayed' || r.action === 'expanded') {
    const via = host ? ` delivery via ${clean(host, 255)}:` : '';
    return `${who}${via} ${reply || r.action}`.trimEnd();
  }
  if (host && reply) return `${who} host ${clean(host, 255)} said: ${reply}${inReply}`;
  if (reply) return `${who} ${reply}${inReply}`;
  return `${who} ${r.action === 'delayed' ? 'delivery temporarily suspended' : 'delivery failed'} (status ${clean(r.status, 16)})`;
}

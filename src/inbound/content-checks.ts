/**
 * inbound/content-checks — what the end of DATA or the last BDAT chunk is
 * refused for before anything is stored: too big, NUL, bare CR/LF (when the
 * listener rejects them), an overlong line, a mail loop (too many Received
 * headers). A pure function of the reader's flags, the header block and the
 * listener's settings.
 *
 * Does not check authentication (inbound/authcheck, inbound/dmarc-policy) or
 * the queue's room (queue/space); inbound/session sends the reply.
 */
import { countHeader, headerBlock } from '../intake/headers.js';
import type { DataFlags } from '../smtp/data.js';
import { replyOf, type Refusal } from './refusal.js';

export interface ContentLimits {
  readonly bareNewline: 'normalize' | 'reject';
  readonly maxReceivedHeaders: number;
}

/** The first refusal the content earns, or undefined when it may be queued. */
export function contentRefusal(content: Buffer, flags: DataFlags, limits: ContentLimits): Refusal | undefined {
  if (flags.tooBig) return { reason: 'too_big', reply: replyOf('HAL_ERR_TOO_BIG') };
  if (flags.nul) return { reason: 'nul', reply: [550, '5.6.0', 'Message contains NUL characters'] };
  if ((flags.bareCr || flags.bareLf) && limits.bareNewline === 'reject') return { reason: 'bare_newline', reply: replyOf('HAL_ERR_BARE_NEWLINE') };
  if (flags.longLine) return { reason: 'long_line', reply: [550, '5.6.0', 'Message has a line longer than 998 octets (RFC 5322 section 2.1.1)'] };
  if (countHeader(headerBlock(content), 'Received') >= limits.maxReceivedHeaders) return { reason: 'loop', reply: replyOf('HAL_ERR_LOOP') };
  return undefined;
}

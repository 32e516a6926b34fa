/**
 * errors — the one registry of Halcyon's error codes.
 *
 * Every error that can reach an SMTP peer carries the reply it becomes: the
 * basic code, the RFC 3463 enhanced code and whether it is temporary. Code
 * elsewhere throws `HalcyonError` with a code from this table and never builds
 * reply text for these situations by hand. Errors that never reach a peer
 * (config, CLI) carry no SMTP code.
 */

export interface ErrorSpec {
  readonly smtp?: number;
  readonly enhanced?: string;
  readonly text: string;
}

export const ERRORS = {
  HAL_ERR_QUEUE_WRITE: { smtp: 452, enhanced: '4.3.1', text: 'Insufficient system storage, try again later' },
  // The queue's storage failed (corrupt file, I/O error, queue thread gone): not a matter of space (queue/sqlite/worker-store).
  HAL_ERR_QUEUE_FAILED: { smtp: 451, enhanced: '4.3.0', text: 'Local error in processing: queue storage failed, try again later' },
  // The queue's database cannot be reached (refused, shut down, connection lost): transient, probed back (queue/health).
  HAL_ERR_QUEUE_UNAVAILABLE: { smtp: 451, enhanced: '4.3.0', text: 'Local error in processing: queue database unreachable, try again later' },
  HAL_ERR_QUEUE_NOT_FOUND: { text: 'No such message in the queue' },
  HAL_ERR_CONFIG: { text: 'Invalid configuration' },
  // An enqueue carrying an idempotency key another enqueue already stored (queue/idempotency): nothing of it was stored.
  HAL_ERR_IDEMPOTENCY_TAKEN: { text: 'Idempotency key already used' },
  HAL_ERR_TOO_BIG: { smtp: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size' },
  HAL_ERR_LOOP: { smtp: 554, enhanced: '5.4.6', text: 'Too many hops (mail loop detected)' },
  HAL_ERR_BARE_NEWLINE: { smtp: 550, enhanced: '5.5.2', text: 'Bare CR or LF not allowed in message content; use CRLF' },
  HAL_ERR_DMARC_REJECT: { smtp: 550, enhanced: '5.7.1', text: 'Message rejected: it fails the DMARC policy' },
  HAL_ERR_AUTH_TEMPFAIL: { smtp: 451, enhanced: '4.7.5', text: 'Sender authentication (SPF/DKIM/DMARC) failed temporarily, try again later' },
  // Outbound: a command line that would not parse back to the stored envelope is never written (delivery/wire-check).
  HAL_ERR_SENDER_UNSENDABLE: { smtp: 553, enhanced: '5.1.7', text: 'Not sent: the sender address would not survive as a MAIL FROM command' },
  HAL_ERR_RCPT_UNSENDABLE: { smtp: 553, enhanced: '5.1.3', text: 'Not sent: the recipient address would not survive as a RCPT TO command' },
  HAL_ERR_TOO_MANY_FROM_IP: { smtp: 421, enhanced: '4.7.0', text: 'Too many connections from your address, try again later' },
  HAL_ERR_TOO_MANY_CONNECTIONS: { smtp: 421, enhanced: '4.7.0', text: 'Too many connections, try again later' },
  HAL_ERR_AUTH_LOCKED: { smtp: 454, enhanced: '4.7.0', text: 'Too many authentication failures from your address, try again later' },
  HAL_ERR_SENDER_NOT_OWNED: { smtp: 553, enhanced: '5.7.1', text: 'Sender address rejected: not owned by the authenticated user' },
  /** The session appends "; client [IP] blocked using LIST". */
  HAL_ERR_DNSBL_LISTED: { smtp: 554, enhanced: '5.7.1', text: 'Service unavailable' },
  HAL_ERR_RATE_CONNECTIONS: { smtp: 421, enhanced: '4.7.0', text: 'Error: too many connections from your address, try again later' },
  HAL_ERR_RATE_MESSAGES: { smtp: 450, enhanced: '4.7.1', text: 'Error: too many messages from your address, try again later' },
  HAL_ERR_RATE_RECIPIENTS: { smtp: 450, enhanced: '4.7.1', text: 'Error: too many recipients from your account, try again later' },
  HAL_ERR_SHUTTING_DOWN: { smtp: 421, enhanced: '4.3.2', text: 'Service shutting down, closing transmission channel' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class HalcyonError extends Error {
  readonly code: ErrorCode;
  /** What happened, without the code's text (the message is "TEXT: detail"). */
  readonly detail: string | undefined;
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${ERRORS[code].text}: ${detail}` : ERRORS[code].text, options);
    this.code = code;
    this.detail = detail;
    this.name = 'HalcyonError';
  }
  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }
}

/**
 * An error as the detail of another: a HalcyonError gives its detail alone, so wrapping one in another
 * (spool → transaction → queue thread) does not repeat "Insufficient system storage, …" at every layer.
 */
export function detailOf(err: unknown): string {
  if (err instanceof HalcyonError) return err.detail ?? err.message;
  return String(err);
}

/**
 * dsn/types — the input and output of the DSN builder (report.ts), and the
 * builder's typed errors. Plain data, no behaviour.
 */

/** RFC 3464 §2.3.3 action values. */
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

/** Which kind of report a set of recipients makes (decides subject and intro). */
export type DsnKind = 'failure' | 'delay' | 'success';

export interface DsnDiagnostic {
  /** SMTP basic code; outside 200–599 the diagnostic is written as type x-halcyon. */
  readonly code: number;
  readonly enhanced?: string;
  /** Reply text as received (hostile: cleaned before use). */
  readonly text: string;
  /** The command the reply answered: "RCPT TO", "end of DATA" … (human part only). */
  readonly command?: string;
  /** Its bounce class (smtp/bounce-class): an X-Halcyon-Bounce-Class field and a word in the human part. */
  readonly class?: string;
}

export interface DsnRecipient {
  /** Final recipient address. */
  readonly address: string;
  /** ORCPT as stored: "rfc822;alice@example.test". */
  readonly orcpt?: string;
  readonly action: DsnAction;
  /** RFC 3463 status "5.2.2"; an invalid value is replaced by the action's generic one. */
  readonly status: string;
  /** Host name of the remote MTA, no [ip]. */
  readonly remoteMta?: string;
  readonly diagnostic?: DsnDiagnostic;
  /** epoch ms */
  readonly lastAttemptAt?: number;
  /** epoch ms; written for `delayed` only. */
  readonly willRetryUntil?: number;
  /** "mx.example.test[127.0.0.1]:25", for the human part. */
  readonly hostDescription?: string;
}

export interface DsnOriginal {
  /** Our queue id of the original message. */
  readonly id: string;
  /** ENVID, decoded from xtext. */
  readonly envid?: string;
  readonly receivedAt: number;
  /** Absent: full content for failure reports, headers for delay/success reports. */
  readonly ret?: 'FULL' | 'HDRS';
  /** The whole original message as stored (CRLF lines). */
  readonly content: Buffer;
  /** Taken from content's headers when absent. */
  readonly messageId?: string;
  readonly subject?: string;
}

export interface DsnInput {
  /** Our host name. */
  readonly reportingMta: string;
  /** "MAILER-DAEMON@<hostname>" */
  readonly postmasterFrom: string;
  /** The original envelope sender (never "": nobody reports to the null sender). */
  readonly to: string;
  readonly original: DsnOriginal;
  readonly recipients: readonly DsnRecipient[];
  /** epoch ms: the report's Date and Message-ID. */
  readonly now: number;
  /** First boundary to try (tests); still replaced if it occurs in the content. */
  readonly boundary?: string;
  /** Random bytes for boundaries and the Message-ID; default node:crypto randomBytes. */
  readonly random?: (bytes: number) => Buffer;
  /** Cap on returned content in bytes (default 100 KiB); over it only headers are returned. */
  readonly maxReturnedBytes?: number;
}

export interface DsnReport {
  /** Top-level header fields in order, values already folded (CRLF + WSP). */
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
  /** The whole RFC 5322 message (headers + body), CRLF lines. */
  readonly body: Buffer;
  readonly subject: string;
  /** "<…@reportingMta>" */
  readonly messageId: string;
  readonly kind: DsnKind;
  readonly boundary: string;
  /** BODY= to use when sending the report: 8BITMIME/BINARYMIME when the returned content needs it. */
  readonly bodyType: '7BIT' | '8BITMIME' | 'BINARYMIME';
  /** True when the To address is not ASCII: the report must go out with SMTPUTF8. */
  readonly smtputf8: boolean;
  /** What was returned of the original. */
  readonly returned: 'full' | 'headers' | 'headers-truncated';
}

export type DsnErrorCode = 'HAL_ERR_DSN_NO_RECIPIENTS' | 'HAL_ERR_DSN_NULL_SENDER' | 'HAL_ERR_DSN_BOUNDARY';

/**
 * A report that cannot be built. Never reaches an SMTP peer, so it carries no
 * reply code (and lives here rather than in errors.ts' SMTP-facing registry).
 */
export class DsnError extends Error {
  readonly code: DsnErrorCode;
  constructor(code: DsnErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'DsnError';
  }
}

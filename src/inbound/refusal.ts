/**
 * inbound/refusal — what an inbound refusal is: the reply (code, enhanced
 * code, text) and the reason it is counted and logged under, plus the reply an
 * error of the registry (errors.ts) becomes at the SMTP door.
 *
 * Does not send or log anything: inbound/session writes the reply and its
 * reject line (inbound/reject-line).
 */
import { ERRORS, type ErrorCode } from '../errors.js';

export type Reply3 = [code: number, enhanced: string, text: string];

/** A refusal decided outside the session: the reason (metrics, reject line), the reply and extra log fields. */
export interface Refusal {
  readonly reason: string;
  readonly reply: Reply3;
  readonly extra?: Record<string, unknown>;
}

/** The reply an error of the registry becomes (errors.ts is the one place its code and text live). */
export function replyOf(code: ErrorCode): Reply3 {
  const e = ERRORS[code] as { smtp?: number; enhanced?: string; text: string };
  return [e.smtp ?? 451, e.enhanced ?? '4.3.0', e.text];
}

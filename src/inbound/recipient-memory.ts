/**
 * inbound/recipient-memory — what Halcyon remembers about a relayed
 * recipient, asked at RCPT (issue #22): the suppression list first (an
 * address that hard-bounced is refused now, not bounced later), then
 * recipient verification (the remote's verdict for a route with
 * verify = "probe"). One refusal or none.
 *
 * Does not decide either answer: queue/suppression words the suppression
 * reply and inbound/verifier + inbound/verify-policy the probe's. Local
 * domains are not asked (inbound/envelope checks their mailboxes).
 */
import { suppressedReply, type SuppressionEntry } from '../queue/suppression.js';
import type { Refusal } from './refusal.js';
import type { RcptAnswer } from './verify-policy.js';

export interface RecipientMemory {
  /** The suppression list's entry in force for an address (absent: no list). */
  readonly suppressed?: (address: string) => Promise<SuppressionEntry | undefined>;
  /** What recipient verification answers for a routed address (absent: none). */
  readonly verifyRecipient?: (address: string, domain: string) => Promise<RcptAnswer>;
}

/** The refusal a relayed recipient earns from the suppression list or verification, if any. */
export async function rememberedRefusal(memory: RecipientMemory, address: string, domain: string): Promise<Refusal | undefined> {
  const entry = await memory.suppressed?.(address);
  if (entry) {
    const r = suppressedReply(address, entry);
    return { reason: 'suppressed', reply: [r.code, r.enhanced, r.text], extra: { class: entry.class } };
  }
  const answer = await memory.verifyRecipient?.(address, domain);
  if (answer?.kind === 'refuse') return { reason: answer.reason, reply: [answer.code, answer.enhanced, answer.text] };
  return undefined;
}

/**
 * intake/arc — ARC sealing (RFC 8617) of mail we forward: a message from
 * outside that an alias of a local domain sends on to a remote address gets
 * one ARC set on top (ARC-Authentication-Results, ARC-Message-Signature,
 * ARC-Seal), made by mailauth's sealer with an `[[arc]]` key, so the final
 * receiver can rely on the SPF/DKIM/DMARC results we saw before forwarding
 * broke SPF (and, if a list footer were added, DKIM).
 *
 * Whether and how (`arcPlan`, pure):
 * | the message                                                   | seal?                                        |
 * |---------------------------------------------------------------|----------------------------------------------|
 * | not from the MX listener, or from a client that is ours       | no (ours is DKIM-signed instead)             |
 * | no recipient forwarded to a remote address                    | no (nothing leaves)                          |
 * | not verified (`[inbound] verify = false`): no results to seal | no                                           |
 * | no `[[arc]]` key                                              | no                                           |
 * | an incoming ARC chain that failed (cv=fail)                   | no (RFC 8617 §5.1: a failed chain ends here) |
 * | otherwise                                                     | yes: the key of the forwarding domain (or    |
 * |                                                               | its nearest parent), else the first key;     |
 * |                                                               | cv = the incoming chain's result (none/pass) |
 *
 * The ARC-Authentication-Results carry the same results as the
 * Authentication-Results header intake prepends (inbound/authcheck), which
 * stays below the ARC set. The seal is made once, before the queue write;
 * local copies of the same message carry it too (harmless: it only adds
 * trace).
 *
 * What it does not do: verify chains (inbound/authcheck, through mailauth),
 * DKIM-sign (intake/dkim), or decide which recipients are forwarded
 * (inbound/envelope marks them).
 */
import { sealMessage } from 'mailauth';
import { keyFor, type DkimKey } from './dkim.js';

/** The incoming chain's verdict, as mailauth reports it. */
export type ArcChain = 'none' | 'pass' | 'fail';

export interface ArcInput {
  /** From the MX listener, from a client that is not ours. */
  readonly fromOutside: boolean;
  /** Local domains whose aliases sent a copy of this message to a remote address. */
  readonly forwardedBy: readonly string[];
  /** Our Authentication-Results header ("Authentication-Results: host; …\r\n"), when verified. */
  readonly authResults?: string;
  /** The incoming ARC chain's result, when verified. */
  readonly chain?: ArcChain;
}

export type ArcPlan =
  | { readonly seal: false; readonly why: string }
  | { readonly seal: true; readonly key: DkimKey; readonly cv: 'none' | 'pass'; readonly authResults: string };

/** Pure: whether to seal, and with what (the table above). */
export function arcPlan(input: ArcInput, keys: readonly DkimKey[]): ArcPlan {
  if (!input.fromOutside) return { seal: false, why: 'not mail from outside' };
  if (input.forwardedBy.length === 0) return { seal: false, why: 'not forwarded' };
  if (input.authResults === undefined || input.chain === undefined) return { seal: false, why: 'not verified' };
  if (keys.length === 0) return { seal: false, why: 'no [[arc]] key' };
  if (input.chain === 'fail') return { seal: false, why: 'the incoming ARC chain failed' };
  const key = input.forwardedBy.map((d) => keyFor(d.toLowerCase(), keys)).find((k) => k !== undefined) ?? keys[0]!;
  // The payload after "i=N; ": our header's value, unfolded onto one logical line.
  const authResults = input.authResults.replace(/^Authentication-Results:\s*/i, '').replace(/\r\n$/, '').replace(/\r\n\s+/g, ' ');
  return { seal: true, key, cv: input.chain, authResults };
}

/** The ARC set to prepend to `message` (CRLF-terminated header fields), or undefined when mailauth made none. */
export async function arcSeal(message: Buffer, plan: Extract<ArcPlan, { seal: true }>, now: number): Promise<string | undefined> {
  const headers = await sealMessage(message, {
    signingDomain: plan.key.domain, selector: plan.key.selector,
    privateKey: plan.key.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    authResults: plan.authResults, cv: plan.cv, signTime: new Date(now),
  });
  const text = headers.toString('latin1');
  return text === '' ? undefined : text;
}

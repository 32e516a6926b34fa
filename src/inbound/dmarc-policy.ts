/**
 * inbound/dmarc-policy — what end of data does with a verified message from
 * outside: the decision table of `[inbound] dmarc`, pure.
 *
 * | mode    | DMARC result | policy (p=, or sp= for a subdomain) | other checks   | action                  |
 * |---------|--------------|-------------------------------------|----------------|-------------------------|
 * | tag     | any          | any                                 | any            | accept (header only)    |
 * | enforce | temperror    | —                                   | —              | 451 4.7.5 (try later)   |
 * | enforce | fail         | reject or quarantine                | SPF or DKIM temperror | 451 4.7.5 (it may pass once DNS answers) |
 * | enforce | fail         | reject                              | —              | 550 5.7.1, nothing queued |
 * | enforce | fail         | quarantine                          | —              | accept, quarantined     |
 * | enforce | fail         | none                                | —              | accept                  |
 * | enforce | pass, none, permerror | —                          | —              | accept                  |
 *
 * The policy is mailauth's, found as RFC 9989 says (tree walk, np=, t=y).
 * Departures, on purpose: `pct=` is not sampled (a published reject applies
 * to every failing message), and no ARC sealer is trusted to override a DMARC
 * failure (there is no list of trusted sealers yet); both are conservative.
 */
import { ERRORS } from '../errors.js';

export type DmarcMode = 'tag' | 'enforce';

/** What verification found, reduced to what the decision needs. */
export interface AuthSummary {
  /** pass | fail | none | temperror | permerror | … as mailauth reports it. */
  readonly dmarc: string;
  /** The applicable published policy, when there is a record. */
  readonly policy?: string;
  /** The From: domain the policy belongs to (for the reply text). */
  readonly domain?: string;
  /** Whether SPF or a DKIM check ended in a temporary (DNS) error. */
  readonly temperror: boolean;
}

export type AuthAction =
  | { readonly kind: 'accept' }
  | { readonly kind: 'quarantine' }
  | { readonly kind: 'reject'; readonly code: number; readonly enhanced: string; readonly text: string }
  | { readonly kind: 'tempfail'; readonly code: number; readonly enhanced: string; readonly text: string };

export function dmarcAction(mode: DmarcMode, s: AuthSummary): AuthAction {
  if (mode === 'tag') return { kind: 'accept' };
  const temp = ERRORS.HAL_ERR_AUTH_TEMPFAIL;
  const tempfail: AuthAction = { kind: 'tempfail', code: temp.smtp, enhanced: temp.enhanced, text: temp.text };
  if (s.dmarc === 'temperror') return tempfail;
  if (s.dmarc !== 'fail') return { kind: 'accept' };
  const policy = (s.policy ?? 'none').toLowerCase();
  if ((policy === 'reject' || policy === 'quarantine') && s.temperror) return tempfail;
  if (policy === 'reject') {
    const e = ERRORS.HAL_ERR_DMARC_REJECT;
    return { kind: 'reject', code: e.smtp, enhanced: e.enhanced, text: s.domain ? `${e.text} of ${s.domain}` : e.text };
  }
  if (policy === 'quarantine') return { kind: 'quarantine' };
  return { kind: 'accept' };
}

/**
 * inbound/authcheck — verifies a message from outside on the MX listener:
 * SPF on MAIL FROM and on HELO, DKIM, DMARC and ARC through mailauth 7.1,
 * and writes the result as one `Authentication-Results:` header (RFC 8601)
 * naming our hostname. What end of data then does is inbound/dmarc-policy's
 * decision; mail that is ours (submission, authenticated, [relay] networks)
 * never comes here.
 *
 * Never throws: a DNS failure is mailauth's temperror, and anything else that
 * goes wrong inside verification is reported as temperror for every method
 * (under `dmarc = "enforce"` that is a 451, under "tag" just the header).
 */
import { isIP } from 'node:net';
import { authenticate, spf as spfCheck } from 'mailauth';
import type { ArcChain } from '../intake/arc.js';
import type { AuthResolver } from './auth-dns.js';
import type { AuthSummary } from './dmarc-policy.js';

export interface AuthInput {
  readonly ip: string;
  readonly helo: string;
  /** Envelope sender; "" for the null sender. */
  readonly sender: string;
  /** The message as received (CRLF, not dot-stuffed). */
  readonly message: Buffer;
}

export interface AuthResult {
  /** "Authentication-Results: …\r\n", to prepend to the message. */
  readonly header: string;
  readonly summary: AuthSummary;
  /** The incoming ARC chain: none, pass, or fail (anything mailauth did not call none or pass). */
  readonly arc: ArcChain;
}

const fold = (rows: readonly string[]): string => rows.map((r) => r.replace(/\r?\n\s*/g, ' ')).join(';\r\n\t');

/** RFC 8601 header for `rows` ("spf=pass smtp.mailfrom=…"), naming `hostname` as the authserv-id. */
export function authResultsHeader(hostname: string, rows: readonly string[]): string {
  return `Authentication-Results: ${hostname};${rows.length === 0 ? ' none' : `\r\n\t${fold(rows)}`}\r\n`;
}

const arcChain = (result: string): ArcChain => (result === 'none' || result === 'pass' ? result : 'fail');

export class AuthChecker {
  constructor(private readonly hostname: () => string, private readonly resolver: AuthResolver) {}

  async check(input: AuthInput): Promise<AuthResult> {
    const mta = this.hostname();
    try {
      const heloIsName = input.helo !== '' && isIP(input.helo.replace(/^\[|\]$/g, '')) === 0;
      const [auth, helo] = await Promise.all([
        authenticate(input.message, {
          ip: input.ip.replace(/^::ffff:/, ''), helo: input.helo || undefined, sender: input.sender || undefined, mta,
          resolver: this.resolver, disableBimi: true,
        }),
        // SPF on HELO (RFC 7208 §2.3) as its own result; with a null sender the MAIL FROM check is already the HELO's.
        input.sender !== '' && heloIsName
          ? spfCheck({ sender: `postmaster@${input.helo}`, ip: input.ip.replace(/^::ffff:/, ''), helo: input.helo, mta, resolver: this.resolver })
          : Promise.resolve(undefined),
      ]);
      const rows: string[] = [];
      for (const r of auth.dkim.results ?? []) rows.push(r.info);
      if (auth.spf) rows.push(auth.spf.info);
      if (helo) rows.push(`spf=${helo.status.result} smtp.helo=${input.helo}`);
      if (auth.arc && auth.arc.info) rows.push(auth.arc.info);
      if (auth.dmarc && auth.dmarc.info) rows.push(auth.dmarc.info);
      const temperror = (auth.spf && /^temperr/.test(auth.spf.status.result)) === true
        || (auth.dkim.results ?? []).some((r) => /^temperr/.test(r.status.result));
      const dmarc = auth.dmarc ? auth.dmarc.status.result : 'none';
      return {
        header: authResultsHeader(mta, rows),
        summary: { dmarc: dmarc === 'temperr' ? 'temperror' : dmarc, policy: auth.dmarc ? auth.dmarc.policy : undefined, domain: auth.dmarc ? auth.dmarc.domain : undefined, temperror },
        arc: arcChain(auth.arc ? auth.arc.status.result : 'none'),
      };
    } catch (err) {
      const why = (err as Error).message.replace(/[()\r\n\\]/g, ' ').slice(0, 120);
      return {
        header: authResultsHeader(mta, [`spf=temperror (${why})`, 'dkim=temperror', 'dmarc=temperror']),
        summary: { dmarc: 'temperror', temperror: true },
        // Nothing could be verified: there is no chain result to vouch for, so nothing is sealed.
        arc: 'fail',
      };
    }
  }
}

/**
 * delivery/tls-result-type — pure: the RFC 8460 §4.3.2 result type of a TLS
 * session that failed, from the reply Halcyon recorded for it.
 *
 * | what the failure says                                   | result type                 |
 * |---------------------------------------------------------|-----------------------------|
 * | the server does not offer STARTTLS / refused it         | starttls-not-supported      |
 * | certificate name does not match (Hostname/IP …)         | certificate-host-mismatch   |
 * | certificate has expired / is not yet valid              | certificate-expired         |
 * | DANE: certificate matches no TLSA record                | validation-failure          |
 * | DANE: TLSA lookup SERVFAIL (bogus)                      | dnssec-invalid              |
 * | MTA-STS: no MX host matches the policy                  | validation-failure          |
 * | any other TLS handshake failure                         | certificate-not-trusted     |
 * | anything else (connection refused, timeouts …)          | none: not a TLS failure     |
 *
 * Does not count anything (delivery/tls-sessions).
 */

export type TlsResultType =
  | 'starttls-not-supported' | 'certificate-host-mismatch' | 'certificate-expired' | 'certificate-not-trusted'
  | 'validation-failure' | 'tlsa-invalid' | 'dnssec-invalid' | 'dane-required'
  | 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

/** The result type of a failed session's reply text, or undefined when the failure is not about TLS. */
export function tlsResultType(text: string): TlsResultType | undefined {
  if (/does not offer STARTTLS|STARTTLS refused|starttls-not-supported/i.test(text)) return 'starttls-not-supported';
  if (/DANE: TLSA .*SERVFAIL|DANE: .*(bogus|unobtainable)/i.test(text)) return 'dnssec-invalid';
  if (/DANE: certificate .*rejected/i.test(text)) return 'validation-failure';
  if (/matches no MX host|validation-failure/i.test(text)) return 'validation-failure';
  if (/does not match certificate|altnames|host-mismatch/i.test(text)) return 'certificate-host-mismatch';
  if (/certificate has expired|not yet valid|CERT_HAS_EXPIRED/i.test(text)) return 'certificate-expired';
  if (/TLS handshake failed|certificate/i.test(text)) return 'certificate-not-trusted';
  return undefined;
}

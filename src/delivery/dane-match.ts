/**
 * delivery/dane-match — pure: TLSA records (RFC 6698) and whether a server's
 * certificate chain matches them under the rules of SMTP DANE (RFC 7672 §3).
 *
 * | usage            | what must match                    | then                                      |
 * |------------------|------------------------------------|-------------------------------------------|
 * | DANE-EE (3)      | the server's own certificate (leaf) | nothing else: no name, no expiry (§3.1.1) |
 * | DANE-TA (2)      | a CA certificate in the chain the   | the chain from the leaf up to it verifies |
 * |                  | server sent                         | (each signed by the next), and the leaf   |
 * |                  |                                     | names one of the reference identifiers    |
 * |                  |                                     | (the MX host name; §3.2.2) and is within  |
 * |                  |                                     | its validity period                       |
 * | PKIX-TA (0), PKIX-EE (1) | unusable in SMTP (§3.1.3): ignored                                  |
 *
 * Selector 0 is the whole certificate (DER), 1 its SubjectPublicKeyInfo
 * (DER); matching type 0 is the data itself, 1 its SHA-256, 2 its SHA-512.
 * A record with any other field value is unusable and ignored. A DANE-TA
 * record matches a certificate the server sent (RFC 7672 §3.1.2 asks servers
 * to send the trust anchor); a bare public key (2 1 0) not backed by a sent
 * certificate is not used.
 *
 * What it does not do: look anything up (delivery/dane) or speak TLS
 * (delivery/connection hands the chain in).
 */
import { createHash, X509Certificate } from 'node:crypto';

export interface Tlsa {
  readonly usage: number;
  readonly selector: number;
  readonly mtype: number;
  readonly data: Buffer;
}

export const DANE_TA = 2;
export const DANE_EE = 3;

/** TLSA RDATA (RFC 6698 §2.1): usage, selector, matching type, association data. */
export function parseTlsa(rdata: Buffer): Tlsa | undefined {
  if (rdata.length < 4) return undefined;
  return { usage: rdata[0]!, selector: rdata[1]!, mtype: rdata[2]!, data: Buffer.from(rdata.subarray(3)) };
}

const DIGEST_LENGTH: Record<number, number> = { 1: 32, 2: 64 };

/** The records SMTP DANE can use (RFC 7672 §3.1.3: DANE-TA and DANE-EE, known selectors and matching types). */
export function usableTlsa(records: readonly Tlsa[]): Tlsa[] {
  return records.filter((r) => (r.usage === DANE_TA || r.usage === DANE_EE)
    && (r.selector === 0 || r.selector === 1)
    && (r.mtype === 0 ? r.data.length > 0 : r.data.length === DIGEST_LENGTH[r.mtype]));
}

/** "3 1 1 abcd…" as a zone file writes it (for logs and tests). */
export function tlsaText(r: Tlsa): string {
  return `${r.usage} ${r.selector} ${r.mtype} ${r.data.toString('hex')}`;
}

/** The association data of `cert` for a record's selector and matching type. */
export function association(cert: X509Certificate, selector: number, mtype: number): Buffer {
  const raw = selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  if (mtype === 1) return createHash('sha256').update(raw).digest();
  if (mtype === 2) return createHash('sha512').update(raw).digest();
  return raw;
}

const matches = (cert: X509Certificate, r: Tlsa): boolean => association(cert, r.selector, r.mtype).equals(r.data);

export type DaneVerdict =
  | { readonly ok: true; readonly matched: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Whether `chain` (the server's certificates, leaf first, as sent) satisfies
 * `records` for a server whose reference identifiers are `names`, at `now`.
 */
export function verifyDane(chain: readonly X509Certificate[], records: readonly Tlsa[], names: readonly string[], now: Date): DaneVerdict {
  const leaf = chain[0];
  if (!leaf) return { ok: false, reason: 'the server sent no certificate' };
  const usable = usableTlsa(records);
  const ee = usable.find((r) => r.usage === DANE_EE && matches(leaf, r));
  if (ee) return { ok: true, matched: `DANE-EE ${tlsaText(ee)}` };
  let why = `certificate matches none of ${usable.length} TLSA record(s)`;
  const taRecords = usable.filter((r) => r.usage === DANE_TA);
  for (let i = 1; i < chain.length && taRecords.length > 0; i++) {
    const ta = taRecords.find((r) => matches(chain[i]!, r));
    if (!ta) continue;
    const broken = brokenLink(chain, i);
    if (broken !== undefined) { why = `DANE-TA ${tlsaText(ta)} matched, but ${broken}`; continue; }
    const name = names.find((n) => leaf.checkHost(n) !== undefined);
    if (name === undefined) { why = `DANE-TA ${tlsaText(ta)} matched, but the certificate names none of ${names.join(', ')}`; break; }
    if (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo)) {
      why = `DANE-TA ${tlsaText(ta)} matched, but the certificate is not valid now (${leaf.validFrom} – ${leaf.validTo})`;
      break;
    }
    return { ok: true, matched: `DANE-TA ${tlsaText(ta)} for ${name}` };
  }
  return { ok: false, reason: why };
}

/** Undefined when chain[0] … chain[upTo] each is issued and signed by the next; else what breaks. */
function brokenLink(chain: readonly X509Certificate[], upTo: number): string | undefined {
  for (let i = 0; i < upTo; i++) {
    const child = chain[i]!;
    const issuer = chain[i + 1]!;
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) {
      return `certificate ${i} of the chain is not signed by certificate ${i + 1}`;
    }
    if (!issuer.ca) return `certificate ${i + 1} of the chain is not a CA`;
  }
  return undefined;
}

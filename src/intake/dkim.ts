/**
 * intake/dkim — DKIM signing (RFC 6376; Ed25519 per RFC 8463) of the mail
 * that is ours: which key signs a message (its From: domain, or the nearest
 * parent domain with a key), the DKIM-Signature header itself, and the DNS
 * TXT record that publishes a key.
 *
 * Relaxed/relaxed canonicalization; From, Subject and To are oversigned (each
 * listed in h= once more than it occurs), so a verifier fails a copy to which
 * someone added a second From, Subject or To. The canonicalization, body hash
 * and header formatting are mailauth's (7.1); this file only chooses what to
 * sign and composes them, because mailauth's signer cannot oversign
 * (docs/decisions/0007-dkim-signing-from-mailauth-parts.md).
 *
 * Pure functions of their input (the signature's t= is the time given); no
 * file or DNS access — keys are loaded by intake/dkim-keys.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import tools from 'mailauth/lib/tools.js';
import relaxed from 'mailauth/lib/dkim/header/relaxed.js';
import body from 'mailauth/lib/dkim/body/index.js';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimKey {
  /** d=: the signing domain. */
  readonly domain: string;
  /** s=: the key is published at SELECTOR._domainkey.DOMAIN. */
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKey: KeyObject;
  /** Header fields signed where present (From always among them). */
  readonly headers: readonly string[];
}

/** Signed where present (a subset of RFC 6376 §5.4.1's recommendation, plus the list headers bulk senders need). */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  'From', 'Reply-To', 'Subject', 'Date', 'To', 'Cc', 'Message-ID', 'In-Reply-To', 'References',
  'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding', 'Sender', 'List-Id', 'List-Unsubscribe', 'List-Unsubscribe-Post',
];

/** Listed once more than they occur: a copy with one of these added fails verification. */
export const OVERSIGNED_HEADERS: readonly string[] = ['From', 'Subject', 'To'];

/** The headers to sign for a configured list: From is always first (RFC 6376 §5.4 requires it). */
export function signedHeaders(configured: readonly string[] | undefined): string[] {
  const list = configured && configured.length > 0 ? configured : DEFAULT_SIGNED_HEADERS;
  const seen = new Set<string>();
  const out: string[] = [];
  for (const h of ['From', ...list]) {
    const k = h.trim().toLowerCase();
    if (k === '' || seen.has(k)) continue;
    seen.add(k);
    out.push(h.trim());
  }
  return out;
}

/**
 * The domain of the first mailbox in the From: header ("Name <a@b.example>",
 * "a@b.example (comment)"), lower-cased; undefined when there is none.
 */
export function authorDomain(headerBlock: string): string | undefined {
  const m = /^From:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)/im.exec(headerBlock);
  if (!m) return undefined;
  const value = (m[1] ?? '').replace(/\r?\n/g, '').replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\((?:[^()\\]|\\.)*\)/g, '');
  const first = value.split(',')[0] ?? '';
  const angled = /<([^>]*)>/.exec(first);
  const addr = (angled ? angled[1] ?? '' : first).trim();
  const at = addr.lastIndexOf('@');
  if (at < 0) return undefined;
  const domain = addr.slice(at + 1).replace(/[>\s;]+$/, '').toLowerCase().replace(/\.$/, '');
  return /^[a-z0-9.-]+$/.test(domain) && domain.length > 0 ? domain : undefined;
}

/** The key for a From: domain: its own, else the nearest parent domain's; undefined when none. */
export function keyFor(domain: string | undefined, keys: readonly DkimKey[]): DkimKey | undefined {
  if (!domain) return undefined;
  let best: DkimKey | undefined;
  for (const k of keys) {
    const d = k.domain.toLowerCase();
    if ((domain === d || domain.endsWith(`.${d}`)) && (!best || d.length > best.domain.length)) best = k;
  }
  return best;
}

/**
 * The DKIM-Signature header field (CRLF-terminated) for `message` (headers and
 * body, CRLF lines) signed with `key` at time `now`. Prepending it to the
 * message gives the signed message.
 */
export function dkimSignature(message: Buffer, key: DkimKey, now: number): string {
  const split = message.indexOf('\r\n\r\n');
  const head = split < 0 ? message : message.subarray(0, split + 2);
  const content = split < 0 ? Buffer.alloc(0) : message.subarray(split + 4);
  const hasher = body.dkimBody('relaxed', 'sha256', false);
  hasher.update(content);
  const bodyHash = hasher.digest('base64');
  const present = tools.getSigningHeaderLines(tools.parseHeaders(head).parsed, key.headers.join(':'));
  // Oversigning: h= names the field once more than it occurs; the extra name matches nothing (a null string, RFC 6376 §5.4.2).
  const signedNames = key.headers.map((h) => h.toLowerCase());
  const extra = OVERSIGNED_HEADERS.filter((h) => signedNames.includes(h.toLowerCase()));
  const keys = [present.keys, ...extra].filter((k) => k !== '').join(': ');
  const { canonicalizedHeader, dkimHeaderOpts } = relaxed.relaxedHeaders('DKIM', { keys, headers: present.headers }, {
    signingDomain: key.domain, selector: key.selector, algorithm: key.algorithm, canonicalization: 'relaxed/relaxed', bodyHash,
    signTime: new Date(now),
  });
  const b = key.algorithm === 'rsa-sha256'
    ? sign('sha256', canonicalizedHeader, key.privateKey)
    // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the canonicalized header.
    : sign(null, createHash('sha256').update(canonicalizedHeader).digest(), key.privateKey);
  return `${tools.formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: b.toString('base64') }, true)}\r\n`;
}

/**
 * The TXT record value that publishes the public half of a key:
 * RSA as the base64 of its DER SubjectPublicKeyInfo, Ed25519 as the base64
 * of the raw 32-byte key (RFC 8463 §4).
 */
export function dkimTxtRecord(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  if (publicKey.asymmetricKeyType === 'ed25519') return `v=DKIM1; k=ed25519; p=${spki.subarray(spki.length - 32).toString('base64')}`;
  return `v=DKIM1; k=rsa; p=${spki.toString('base64')}`;
}

/** A TXT value as a zone file wants it: strings of at most 255 octets. */
export function zoneStrings(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.join(' ');
}

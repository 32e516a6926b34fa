/**
 * smtp/address — RFC 5321 §4.1.2 paths and mailboxes, parsed strictly.
 *
 * Parses `<>`, `<user@domain>`, `<"quoted local"@domain>`, address literals
 * (`[192.0.2.1]`, `[IPv6:…]`) and source routes (`<@a,@b:user@c>`, which RFC
 * 5321 §4.1.1.3 says to accept and ignore; the relay policy still sees them).
 * UTF-8 is allowed only when the transaction uses SMTPUTF8 (RFC 6531). Length
 * limits are RFC 5321 §4.5.3.1: local part 64, domain 255, path 256 octets.
 *
 * Does not decide relaying or locality (inbound/policy does) and does no DNS.
 */
import { isIP } from 'node:net';

export interface Mailbox {
  /** Local part as it appears (quotes removed, quoted-pairs unescaped). */
  readonly local: string;
  /** Domain in lower case, or the literal with brackets ("[192.0.2.1]"). */
  readonly domain: string;
  readonly quoted: boolean;
  readonly literal: boolean;
}

export interface Path {
  /** Undefined for the null path `<>`. */
  readonly mailbox?: Mailbox;
  /** Source route hops, when the client sent one (ignored for delivery). */
  readonly sourceRoute?: readonly string[];
}

export type AddressErrorCode = 'syntax' | 'local-too-long' | 'domain-too-long' | 'path-too-long' | 'utf8-not-allowed' | 'null-not-allowed';
export interface AddressError { readonly error: AddressErrorCode; readonly detail: string }

export const isAddressError = (v: Path | AddressError): v is AddressError => 'error' in v;

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;
const ATEXT_UTF8 = /^(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[^\x00-\x7f])+$/u;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const LABEL_UTF8 = /^(?:[A-Za-z0-9]|[^\x00-\x7f])(?:(?:[A-Za-z0-9-]|[^\x00-\x7f]){0,61}(?:[A-Za-z0-9]|[^\x00-\x7f]))?$/u;

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const fail = (error: AddressErrorCode, detail: string): AddressError => ({ error, detail });

export function isValidDomain(domain: string, utf8: boolean): boolean {
  if (domain.length === 0 || bytes(domain) > 255) return false;
  const labels = domain.split('.');
  const re = utf8 ? LABEL_UTF8 : LABEL;
  return labels.every((l) => re.test(l));
}

function parseLiteral(text: string): boolean {
  const inner = text.slice(1, -1);
  if (/^IPv6:/i.test(inner)) return isIP(inner.slice(5)) === 6;
  if (isIP(inner) === 4) return true;
  // General-address-literal: Standardized-tag ":" 1*dcontent — accepted for syntax, never relayed to.
  return /^[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+$/.test(inner);
}

/** Parses `local@domain` (no angle brackets). */
export function parseMailbox(text: string, utf8: boolean): Mailbox | AddressError {
  if (!utf8 && /[^\x00-\x7f]/.test(text)) return fail('utf8-not-allowed', 'non-ASCII address requires SMTPUTF8');
  let local: string;
  let rest: string;
  let quoted = false;
  if (text.startsWith('"')) {
    let i = 1;
    let out = '';
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\\') {
        const n = text[i + 1];
        if (n === undefined || n < ' ' || n > '~') return fail('syntax', 'bad quoted-pair');
        out += n;
        i++;
      } else if (c === '"') break;
      else if ((c < ' ' || c === '\x7f') || (!utf8 && c > '~')) return fail('syntax', 'bad character in quoted local part');
      else out += c;
    }
    if (text[i] !== '"') return fail('syntax', 'unterminated quoted local part');
    local = out;
    rest = text.slice(i + 1);
    quoted = true;
    if (bytes(text.slice(0, i + 1)) > 64) return fail('local-too-long', 'local part longer than 64 octets');
  } else {
    const at = text.lastIndexOf('@');
    if (at < 0) return fail('syntax', 'missing @domain');
    local = text.slice(0, at);
    rest = text.slice(at);
    const atoms = local.split('.');
    const re = utf8 ? ATEXT_UTF8 : ATEXT;
    if (!atoms.every((a) => re.test(a))) return fail('syntax', 'bad local part');
    if (bytes(local) > 64) return fail('local-too-long', 'local part longer than 64 octets');
  }
  if (!rest.startsWith('@')) return fail('syntax', 'missing @domain');
  const domain = rest.slice(1);
  if (domain.startsWith('[')) {
    if (!domain.endsWith(']') || !parseLiteral(domain)) return fail('syntax', 'bad address literal');
    return { local, domain: domain.replace(/^\[ipv6:/i, '[IPv6:'), quoted, literal: true };
  }
  if (bytes(domain) > 255) return fail('domain-too-long', 'domain longer than 255 octets');
  if (!isValidDomain(domain, utf8)) return fail('syntax', 'bad domain');
  return { local, domain: domain.toLowerCase(), quoted, literal: false };
}

/**
 * Parses a path as it follows `FROM:` or `TO:` (the part before any ESMTP
 * parameters). `allowNull` for reverse paths. `bareWord` lets `RCPT TO:<postmaster>`
 * through, the one address RFC 5321 §4.1.1.3 lets a client send without a domain.
 */
export function parsePath(text: string, opts: { utf8: boolean; allowNull: boolean }): Path | AddressError {
  if (bytes(text) > 256 + 2) return fail('path-too-long', 'path longer than 256 octets');
  if (!text.startsWith('<') || !text.endsWith('>')) return fail('syntax', 'path must be enclosed in <>');
  let inner = text.slice(1, -1);
  if (inner === '') return opts.allowNull ? {} : fail('null-not-allowed', 'null path not allowed here');
  let sourceRoute: string[] | undefined;
  if (inner.startsWith('@')) {
    const colon = inner.indexOf(':');
    if (colon < 0) return fail('syntax', 'bad source route');
    sourceRoute = inner.slice(0, colon).split(',').map((h) => h.trim());
    if (!sourceRoute.every((h) => h.startsWith('@') && isValidDomain(h.slice(1), opts.utf8))) return fail('syntax', 'bad source route');
    inner = inner.slice(colon + 1);
  }
  if (/^postmaster$/i.test(inner)) return { mailbox: { local: 'postmaster', domain: '', quoted: false, literal: false } };
  const mailbox = parseMailbox(inner, opts.utf8);
  if ('error' in mailbox) return mailbox;
  return sourceRoute ? { mailbox, sourceRoute } : { mailbox };
}

/** Renders a mailbox back to its canonical text form (quotes added when needed). */
export function formatMailbox(m: Mailbox): string {
  if (m.domain === '') return m.local;
  const dotAtom = m.local.split('.').every((a) => ATEXT_UTF8.test(a));
  const local = dotAtom ? m.local : `"${m.local.replace(/(["\\])/g, '\\$1')}"`;
  return `${local}@${m.domain}`;
}

/** Domain part of a stored address (lower case), "" when none. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

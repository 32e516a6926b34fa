/**
 * inbound/auth — password hashes (scrypt, node:crypto) and the SASL PLAIN and
 * LOGIN exchanges of RFC 4954 / RFC 4616, as pure steps.
 *
 * The session decides when AUTH is allowed (TLS or loopback) and keeps the
 * exchange state; this file only hashes, verifies and decodes, and says which
 * MAIL FROM addresses a user may use (`[[users]] senders`).
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;

/** "scrypt$N$r$p$salt$hash" (base64 parts). */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function verifyPassword(password: string, stored: string): boolean {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hash, 'base64');
  const got = scryptSync(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 });
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export interface Credentials { readonly user: string; readonly password: string }

/** RFC 4616: [authzid] NUL authcid NUL passwd, base64. Undefined when malformed. */
export function decodePlain(b64: string): Credentials | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3 || !parts[1]) return undefined;
  return { user: parts[1], password: parts[2] ?? '' };
}

export function decodeBase64Line(b64: string): string | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
}

export class UserDirectory {
  private readonly users: Map<string, string>;
  private readonly senders: Map<string, readonly string[]>;
  constructor(users: readonly { name: string; password_hash: string; senders?: readonly string[] }[]) {
    this.users = new Map(users.map((u) => [u.name, u.password_hash]));
    this.senders = new Map(users.flatMap((u) => (u.senders ? [[u.name, u.senders] as const] : [])));
  }
  /** May this authenticated user use this MAIL FROM address? (`[[users]] senders`; unset → any.) */
  maySend(user: string, sender: string): boolean {
    const rules = this.senders.get(user);
    return rules === undefined || senderAllowed(rules, sender);
  }
  get empty(): boolean {
    return this.users.size === 0;
  }
  check(c: Credentials): boolean {
    const hash = this.users.get(c.user);
    // Verify against a dummy hash for unknown users too, so timing does not tell who exists.
    return verifyPassword(c.password, hash ?? DUMMY) && hash !== undefined;
  }
}

/**
 * A sender against a user's `senders` rules: the null sender is always allowed
 * (bounces and auto-replies carry it and claim no one's identity); otherwise
 * an exact address (case-insensitive) or "@domain" for any address there.
 */
export function senderAllowed(rules: readonly string[], sender: string): boolean {
  if (sender === '') return true;
  const s = sender.toLowerCase();
  const at = s.lastIndexOf('@');
  const domain = at < 0 ? '' : s.slice(at);
  return rules.some((r) => {
    const rule = r.toLowerCase();
    return rule.startsWith('@') ? rule === domain : rule === s;
  });
}

const DUMMY = hashPassword(randomBytes(8).toString('hex'));

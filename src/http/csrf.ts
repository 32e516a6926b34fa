/**
 * http/csrf — whether a request may reach the admin API, judged from its
 * headers alone (pure; http/server applies the verdict):
 *
 * - DNS rebinding: on a listener that asks no token, the Host header must name
 *   loopback (localhost, 127.x, [::1]); an attacker's name resolving to
 *   127.0.0.1 gets 403, so its page cannot read the dashboard's CSRF token.
 * - Cross-site requests: a state-changing request (anything but GET/HEAD)
 *   that shows a browser's marks (Origin, Sec-Fetch-Site or Referer) must be
 *   same-origin (Sec-Fetch-Site: same-origin, Origin equal to the Host's) and
 *   carry `X-Halcyon-CSRF: <token>`, the per-server random token the dashboard
 *   page delivers in a meta tag. Browsers send Origin on every cross-origin
 *   POST/DELETE and cannot drop it, so a page elsewhere is refused whatever
 *   credentials (Basic auth) the browser would add.
 * - Clients that are not browsers (the CLI's HTTP backend, curl, scripts)
 *   send none of those marks and pass on their admin token (or loopback) as
 *   before; they never need the CSRF token.
 *
 * Does not authenticate (http/server checks the admin token) and keeps no
 * state: the token is made by the caller (`newCsrfToken`), once per server.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

export const CSRF_HEADER = 'x-halcyon-csrf';

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

export type CsrfVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export const newCsrfToken = (): string => randomBytes(32).toString('base64url');

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** "127.0.0.1:8025", "[::1]:8025", "localhost" → whether it names loopback (the port is ignored). */
export function isLoopbackHostHeader(host: string): boolean {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(host.trim().toLowerCase());
  if (!m) return false;
  const h = (m[1] ?? '').replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/**
 * The verdict for one request. `tokenRequired`: the listener asks for the admin token (then a
 * rebinding attacker has no credentials to ride on and any Host is accepted).
 */
export function csrfVerdict(method: string, headers: Headers, csrfToken: string, tokenRequired: boolean): CsrfVerdict {
  const host = one(headers.host) ?? '';
  if (!tokenRequired && !isLoopbackHostHeader(host)) {
    return { ok: false, reason: `Host "${host.slice(0, 100)}" is not a loopback name: use http://127.0.0.1, http://[::1] or http://localhost` };
  }
  if (method === 'GET' || method === 'HEAD') return { ok: true };
  const origin = one(headers.origin);
  const site = one(headers['sec-fetch-site']);
  const referer = one(headers.referer);
  if (origin === undefined && site === undefined && referer === undefined) return { ok: true }; // not a browser
  if (site !== undefined && site !== 'same-origin') return { ok: false, reason: `cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 40)})` };
  if (origin !== undefined && origin !== `http://${host}` && origin !== `https://${host}`) {
    return { ok: false, reason: `cross-site request refused (Origin ${origin.slice(0, 100)} is not this server's)` };
  }
  const given = one(headers[CSRF_HEADER]) ?? '';
  if (given === '' || !timingSafeEqual(digest(given), digest(csrfToken))) {
    return { ok: false, reason: `a browser's request must carry the dashboard's ${CSRF_HEADER} header` };
  }
  return { ok: true };
}

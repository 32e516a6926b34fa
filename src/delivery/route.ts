/**
 * delivery/route — the `routes` table of the config, read as pure functions:
 * which route (if any) a recipient domain takes, and the destination key its
 * recipients are queued and backed off under.
 *
 * What it does: normalizes the three spellings of a route ("host:port", a list
 * of them, or `{ hosts | socket, protocol, tls, auth, verify }`) into one shape; matches a domain
 * exactly (case-insensitive, trailing dot ignored), then falls back to the
 * "*" smarthost. What it does not: DNS (resolve.ts turns route host names into
 * addresses), connection policy, or local domains (the scheduler keys those
 * as "local:<domain>" before it ever asks here).
 */
import type { RouteConfig, TlsPolicy } from '../config/schema.js';
import { HOST_PORT } from '../config/units.js';

export interface RouteHost {
  /** Host name or IP literal, brackets removed ("::1", not "[::1]"), lowercased. */
  readonly host: string;
  readonly port: number;
}

export interface Route {
  /** The routes-table key that matched: the domain itself, or "*". */
  readonly matched: string;
  /** 'lmtp': RFC 2033 (LHLO, one end-of-data reply per recipient). */
  readonly protocol: 'smtp' | 'lmtp';
  /** Next hops, in the order they are tried (empty when `socket` is set). */
  readonly hosts: readonly RouteHost[];
  /** LMTP over a Unix socket: its path. */
  readonly socket?: string;
  readonly tls?: TlsPolicy;
  readonly auth?: { readonly user: string; readonly password: string };
  /** Recipient verification on this route: "probe" (the default for LMTP routes) or "off". */
  readonly verify: 'probe' | 'off';
}

/** Lowercase, no trailing dot: the form every domain comparison here uses. */
export function normalizeDomain(domain: string): string {
  return domain.trim().replace(/\.$/, '').toLowerCase();
}

/** "mx.example.test:25" / "[::1]:2525" → { host, port }; throws RangeError when malformed. */
export function parseHostPort(text: string): RouteHost {
  const m = HOST_PORT.exec(text.trim());
  if (!m) throw new RangeError(`expected "host:port", got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new RangeError(`port out of range in ${JSON.stringify(text)}`);
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host: host.toLowerCase(), port };
}

function normalizeRoute(matched: string, cfg: RouteConfig): Route {
  if (typeof cfg === 'string') return { matched, protocol: 'smtp', hosts: [parseHostPort(cfg)], verify: 'off' };
  if (Array.isArray(cfg)) return { matched, protocol: 'smtp', hosts: cfg.map(parseHostPort), verify: 'off' };
  const protocol = cfg.protocol ?? 'smtp';
  return {
    matched,
    protocol,
    verify: cfg.verify ?? (protocol === 'lmtp' ? 'probe' : 'off'),
    hosts: (cfg.hosts ?? []).map(parseHostPort),
    ...(cfg.socket !== undefined ? { socket: cfg.socket } : {}),
    ...(cfg.tls ? { tls: cfg.tls } : {}),
    ...(cfg.auth ? { auth: { user: cfg.auth.user, password: cfg.auth.password } } : {}),
  };
}

/**
 * The route a domain takes, or undefined for plain MX delivery.
 * Exact domain first (keys compared case-insensitively), then "*". There is
 * no suffix matching: "example.test" does not route "sub.example.test".
 */
export function routeFor(domain: string, routes: Readonly<Record<string, RouteConfig>>): Route | undefined {
  const want = normalizeDomain(domain);
  for (const [key, cfg] of Object.entries(routes)) {
    if (key !== '*' && normalizeDomain(key) === want) return normalizeRoute(key, cfg);
  }
  const star = routes['*'];
  return star === undefined ? undefined : normalizeRoute('*', star);
}

/** "host:port" with IPv6 hosts bracketed, as keys and logs show it. */
export function formatHostPort(h: RouteHost): string {
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

/**
 * The destination key: `route:<host:port,host:port>` when the domain is
 * routed (`route:lmtp:<host:port,…>` or `route:lmtp:unix:<path>` for LMTP) — so every domain sent through one smarthost shares one backoff and
 * one connection limit — else the normalized domain.
 */
export function destinationKey(domain: string, routes: Readonly<Record<string, RouteConfig>>): string {
  const route = routeFor(domain, routes);
  return route ? routeKey(route) : normalizeDomain(domain);
}

export function routeKey(route: Route): string {
  const where = route.socket !== undefined ? `unix:${route.socket}` : route.hosts.map(formatHostPort).join(',');
  return route.protocol === 'lmtp' ? `route:lmtp:${where}` : `route:${where}`;
}

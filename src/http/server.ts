/**
 * http/server — the admin listener (node:http): the JSON API of http/routes,
 * GET /metrics (Prometheus text) and the dashboard (GET / and /ui/…, from
 * http/dashboard).
 *
 * Auth rule (docs/operations.md): a listener outside loopback (127.0.0.0/8,
 * ::1, "localhost") requires `Authorization: Bearer <http.token>` on every
 * request, and refuses to start without a token (a config error);
 * `http.require_token = true` asks for the token on loopback too. A browser
 * may give the token as the password of HTTP Basic auth (any user name), so
 * the dashboard can be opened where a token is required. Tokens are
 * compared in constant time. Cross-site requests and DNS rebinding are
 * refused by http/csrf's verdict (after auth). Does not implement the
 * operations themselves (http/admin) nor TLS: put a proxy in front for that.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { ConfigProblem } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { sizeBytes } from '../config/units.js';
import { httpEnabled } from '../config/http-listen.js';
import { splitHostPort } from '../config/units.js';
import type { Admin } from './admin.js';
import { AdminError, queueTroubleError } from './admin-api.js';
import type { Actor } from './audit.js';
import { csrfVerdict, newCsrfToken } from './csrf.js';
import { DASHBOARD_HEADERS, dashboardAsset, dashboardPage } from './dashboard.js';
import type { Metrics } from './metrics.js';
import { JsonReply, match, RawBody } from './routes.js';

export interface HttpDeps {
  readonly admin: Admin;
  readonly metrics: Metrics;
  /** Read per request, so a reload (SIGHUP) changes the token. */
  readonly config: () => Config;
  readonly log: Logger;
  readonly clock: () => number;
}

export interface HttpServer {
  /** "127.0.0.1:8025", the port resolved when 0 was asked. */
  readonly address: string;
  close(): Promise<void>;
}

/** 127.0.0.0/8, ::1, ::ffff:127.x and "localhost" are loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Whether the admin listener runs: `http.enabled` and a non-empty `http.listen` ("" disables it, as documented). */
/** Decided in config/http-listen (the CLI reads it without loading this server); re-exported here. */
export { httpEnabled };

export function tokenRequired(cfg: Config): boolean {
  return cfg.http.require_token || !isLoopbackHost(splitHostPort(cfg.http.listen).host);
}

/** What keeps the admin listener from starting: a token is needed and none is set. */
export function httpConfigProblems(cfg: Config): ConfigProblem[] {
  if (!httpEnabled(cfg) || !tokenRequired(cfg) || (cfg.http.token ?? '') !== '' || cfg.http.tokens.length > 0) return [];
  return [{ path: 'http.token', message: cfg.http.require_token
    ? 'http.require_token is set but http.token is empty'
    : `a token is required when http.listen (${cfg.http.listen}) is not a loopback address` }];
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The token a request offers: a Bearer token, or the password of Basic auth (a browser's prompt). */
function offeredToken(authorization: string): string | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization);
  if (!basic) return undefined;
  const pair = Buffer.from(basic[1] ?? '', 'base64').toString('utf8');
  return pair.includes(':') ? pair.slice(pair.indexOf(':') + 1) : undefined;
}

/** The name of the configured token the request offers ("http.token" for the unnamed one); undefined when none matches. */
export function tokenName(req: http.IncomingMessage, cfg: Config): string | undefined {
  const offered = offeredToken(req.headers.authorization ?? '');
  if (offered === undefined) return undefined;
  const given = digest(offered);
  const known = [...((cfg.http.token ?? '') !== '' ? [{ name: 'http.token', token: cfg.http.token! }] : []), ...cfg.http.tokens];
  let name: string | undefined;
  // Every token is compared (in constant time), whichever matches.
  for (const t of known) if (timingSafeEqual(given, digest(t.token)) && name === undefined) name = t.name;
  return name;
}

function authorized(req: http.IncomingMessage, cfg: Config): boolean {
  // Without a configured token nothing is accepted (startup refuses this case; a reload could not get here either).
  return !tokenRequired(cfg) || tokenName(req, cfg) !== undefined;
}

/** Who an API request acts as, for the admin log line (http/audit): the token's name, never the client's claim. */
function actorOf(req: http.IncomingMessage, cfg: Config): Actor {
  const claimed = req.headers['x-halcyon-user'];
  const user = typeof claimed === 'string' && /^[\x21-\x7e]{1,64}$/.test(claimed) ? claimed : undefined;
  return { who: tokenName(req, cfg) ?? 'anonymous', via: 'api', ip: req.socket.remoteAddress, ...(user ? { user } : {}) };
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new AdminError('too_big', 'request body too large');
    chunks.push(c as Buffer);
  }
  if (n === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new AdminError('bad_request', 'body is not JSON');
  }
}

function send(res: http.ServerResponse, status: number, body: string | Buffer, type = 'application/json; charset=utf-8', extra: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
  res.end(body);
}

const json = (res: http.ServerResponse, status: number, value: unknown, extra?: Record<string, string | string[]>) =>
  send(res, status, `${JSON.stringify(value)}\n`, undefined, extra);

export async function startHttpServer(deps: HttpDeps, listen: string): Promise<HttpServer> {
  const problems = httpConfigProblems(deps.config());
  if (problems.length > 0) throw new AdminError('bad_request', problems.map((p) => `${p.path}: ${p.message}`).join('; '));
  // One per server: the dashboard page carries it, a browser's action must send it back (http/csrf).
  const csrfToken = newCsrfToken();
  const server = http.createServer((req, res) => {
    void handle(deps, csrfToken, req, res).catch((err: unknown) => {
      const known = err instanceof AdminError ? err : queueTroubleError(err);
      if (known) {
        const retryAfter = known.retryAfterSeconds;
        return json(res, known.status, { error: known.error, message: known.message }, retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : undefined);
      }
      deps.log.error({ event: 'http_error', url: req.url, err: (err as Error).stack }, 'admin API error');
      if (!res.headersSent) json(res, 500, { error: 'internal', message: (err as Error).message });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => { server.off('error', reject); resolve(); });
  });
  const a = server.address() as import('node:net').AddressInfo;
  const address = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

async function handle(deps: HttpDeps, csrfToken: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const cfg = deps.config();
  if (!authorized(req, cfg)) {
    deps.log.warn({ event: 'http_unauthorized', ip: req.socket.remoteAddress, url: req.url }, 'admin API request without a valid token');
    // Basic first: a browser opening the dashboard prompts for it (the token as the password).
    return json(res, 401, { error: 'unauthorized', message: 'Authorization: Bearer <http.token> required' },
      { 'www-authenticate': ['Basic realm="halcyon", charset="UTF-8"', 'Bearer realm="halcyon"'] });
  }
  const method = req.method ?? 'GET';
  const verdict = csrfVerdict(method, req.headers, csrfToken, tokenRequired(cfg));
  if (!verdict.ok) {
    deps.log.warn({ event: 'http_forbidden', ip: req.socket.remoteAddress, method, url: req.url, reason: verdict.reason }, 'admin API request refused');
    return json(res, 403, { error: 'forbidden', message: verdict.reason });
  }
  const url = new URL(req.url ?? '/', 'http://halcyon.invalid');
  if (url.pathname === '/metrics' && method === 'GET') return send(res, 200, await deps.metrics.text(), deps.metrics.contentType);
  if (url.pathname === '/' && method === 'GET') {
    return send(res, 200, dashboardPage({ hostname: cfg.hostname, csrfToken }), 'text/html; charset=utf-8', DASHBOARD_HEADERS);
  }
  if ((url.pathname.startsWith('/ui/') || url.pathname.startsWith('/queue/')) && method === 'GET') {
    const asset = await dashboardAsset(url.pathname);
    if (asset) return send(res, 200, asset.body, asset.type, DASHBOARD_HEADERS);
    return json(res, 404, { error: 'not_found', message: `no such file: ${url.pathname}` });
  }
  const found = match(method, url.pathname);
  if (!found) return json(res, 404, { error: 'not_found', message: `no such endpoint: ${method} ${url.pathname}` });
  if ('methods' in found) return json(res, 405, { error: 'method_not_allowed', message: `use ${found.methods.join(', ')}` }, { allow: found.methods.join(', ') });
  // JSON bodies may carry a whole message (the injection API), base64 attachments too: allow the message size
  // limit plus room for escaping and base64 (a body past this is a 413 before it is parsed).
  const limit = 2 * sizeBytes(cfg.smtp.max_message_size) + 64 * 1024;
  const body = method === 'GET' ? undefined : await readBody(req, limit);
  const key = req.headers['idempotency-key'];
  const value = await found.route.handle(deps.admin.withActor(actorOf(req, cfg)), {
    params: found.params, query: url.searchParams, body, remoteIp: req.socket.remoteAddress ?? '127.0.0.1', ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
  });
  if (value instanceof RawBody) return send(res, 200, value.bytes, value.contentType);
  if (value instanceof JsonReply) return json(res, value.status, value.value, value.headers);
  // The action itself is logged by http/admin (what, who, the queue ids); this is the request.
  if (method !== 'GET') deps.log.debug({ event: 'admin_request', method, path: url.pathname, ip: req.socket.remoteAddress }, `admin ${method} ${url.pathname}`);
  json(res, 200, value);
}

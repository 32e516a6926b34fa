/**
 * http/routes — the admin API's routing table: method + path pattern →
 * handler over `AdminApi`. Handlers take parsed input and return JSON-able
 * values; errors are `AdminError`s (status from their code). Does not listen,
 * authenticate or serialise (http/server does).
 *
 *   GET    /api/health                   {ok: true}; 503 while the queue is failed or unreachable
 *   GET    /api/config                   the configuration in force (secrets hidden)
 *   GET    /api/queue                    ?domain=&state=&older_than=1h&q=TEXT&limit=N
 *                                        (q: queue id, sender, a recipient or Message-ID containing TEXT)
 *   GET    /api/queue/shape              ?by=domain|destination (qshape: recipients × message age)
 *   GET    /api/queue/:id
 *   GET    /api/queue/:id/content        the stored message (message/rfc822 bytes)
 *   GET    /api/stats/throughput         sent/deferred/bounced per minute, last hour (this node)
 *   GET    /api/stats/failures           failures by bounce class, last hour, and the latest 20 (this node)
 *   POST   /api/queue/flush              {domain?, id?, force?}
 *   POST   /api/queue/:id/hold | /release | /bounce
 *   POST   /api/queue/hold | /release    {domain}
 *   DELETE /api/queue/:id
 *   POST   /api/queue/delete             {ids: [...]}
 *   GET    /api/destinations
 *   POST   /api/destinations/:key/reset
 *   GET    /api/tenants                  suspensions in force, tenants' settings and rate state, waiting recipients
 *   POST   /api/tenants/:name/suspend    {destination?, for?} (http/admin-tenants)
 *   POST   /api/tenants/:name/resume     {destination?}
 *   POST   /api/inject/v1                the injection API (http/inject, docs/events.md): {from, recipients, content,
 *                                        tenant, campaign, metadata}; Idempotency-Key header; 201/400/413/422/429
 *   POST   /api/messages                 the same handler; the older shape {from, to: [...], content | content_base64}
 *                                        still works, and the answer also carries `id` (= queue_id)
 *   GET    /api/suppressions             ?q=TEXT&limit=N&all=1 (all: expired entries too)
 *   POST   /api/suppressions             {address, class?, reason?, ttl?}
 *   DELETE /api/suppressions/:address
 *   POST   /api/suppressions/delete      {addresses: [...]}
 *   POST   /api/suppressions/import      {csv} (the export's format; nothing is imported from a file with errors)
 *   GET    /api/suppressions/export      text/csv (?all=1: expired entries too)
 */
import { parseDuration } from '../config/units.js';
import type { RecipientState } from '../queue/model.js';
import { AdminError, type AdminApi } from './admin-api.js';
import type { ShapeBy } from './queue-shape.js';

export interface RouteInput {
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  readonly body: unknown;
  readonly remoteIp: string;
  /** The request's Idempotency-Key header, when it has one. */
  readonly idempotencyKey?: string;
}

/** A handler's JSON answer with its own status and headers (not 200). */
export class JsonReply {
  constructor(readonly status: number, readonly value: unknown, readonly headers: Record<string, string> = {}) {}
}

/** The injection API's one handler, for both paths; `legacy` (POST /api/messages) adds `id` as its older answer had. */
function injectRoute(legacy: boolean): Route['handle'] {
  return async (a, { body, remoteIp, idempotencyKey }) => {
    if (!a.injectV1) throw new AdminError('unavailable', 'injection needs a running server or its data_dir');
    const r = await a.injectV1(body, idempotencyKey, { clientIp: remoteIp });
    const value = legacy && r.body.queue_id !== null ? { id: r.body.queue_id, ...r.body } : r.body;
    return new JsonReply(r.status, value, r.replayed ? { 'idempotent-replayed': 'true' } : {});
  };
}

/** A handler's answer sent as these bytes (not JSON). */
export class RawBody {
  constructor(readonly bytes: Buffer, readonly contentType: string) {}
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly handle: (admin: AdminApi, input: RouteInput) => Promise<unknown>;
}

const STATES: readonly string[] = ['queued', 'inflight', 'delivered', 'deferred', 'failed', 'expired'];

/** "/api/queue/:id/hold" → a regex with one capture per :name (segments may not contain "/"). */
function route(method: Route['method'], path: string, handle: Route['handle']): Route {
  const names: string[] = [];
  const pattern = new RegExp(`^${path.replace(/:([a-z]+)/g, (_, n: string) => { names.push(n); return '([^/]+)'; })}$`);
  return { method, pattern, names, handle };
}

function obj(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new AdminError('bad_request', 'expected a JSON object');
  return body as Record<string, unknown>;
}

function optString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new AdminError('bad_request', `${key} must be a string`);
  return v;
}

function need(params: Record<string, string>, key: string): string {
  const v = params[key];
  if (v === undefined) throw new AdminError('bad_request', `missing ${key}`);
  return v;
}

export const ROUTES: readonly Route[] = [
  route('GET', '/api/health', async (a) => (a.health ? a.health() : { ok: true })),
  route('GET', '/api/config', async (a) => a.config()),
  route('GET', '/api/queue', async (a, { query }) => {
    const state = query.get('state') || undefined;
    if (state && !STATES.includes(state)) throw new AdminError('bad_request', `state must be one of ${STATES.join(', ')}`);
    const older = query.get('older_than') || undefined;
    const olderThanMs = older === undefined ? undefined : parseDuration(older);
    if (older !== undefined && olderThanMs === undefined) throw new AdminError('bad_request', `not a duration: ${older}`);
    const limitText = query.get('limit') || undefined;
    const limit = limitText === undefined ? undefined : Number(limitText);
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw new AdminError('bad_request', `limit must be a positive integer: ${limitText}`);
    return a.list({ domain: query.get('domain') || undefined, state: state as RecipientState | undefined, olderThanMs, q: query.get('q') || undefined, limit });
  }),
  route('GET', '/api/queue/shape', async (a, { query }) => a.shape((query.get('by') || 'domain') as ShapeBy)),
  route('GET', '/api/queue/:id/content', async (a, { params }) => new RawBody(await a.content(need(params, 'id')), 'message/rfc822')),
  route('GET', '/api/stats/failures', async (a) => {
    if (!a.failures) throw new AdminError('unavailable', 'recent failures are counted by a running server');
    return a.failures();
  }),
  route('GET', '/api/stats/throughput', async (a) => {
    if (!a.throughput) throw new AdminError('unavailable', 'throughput is counted by a running server');
    return a.throughput();
  }),
  route('POST', '/api/aliases/reload', async (a) => {
    if (!a.reloadAliases) throw new AdminError('unavailable', 'the aliases file is read by a running server');
    return a.reloadAliases();
  }),
  route('POST', '/api/queue/flush', async (a, { body }) => {
    const o = obj(body);
    return a.flush({ domain: optString(o, 'domain'), id: optString(o, 'id'), force: o.force === true });
  }),
  route('POST', '/api/queue/hold', async (a, { body }) => a.hold({ domain: optString(obj(body), 'domain') }, true)),
  route('POST', '/api/queue/release', async (a, { body }) => a.hold({ domain: optString(obj(body), 'domain') }, false)),
  route('POST', '/api/queue/delete', async (a, { body }) => {
    const ids = obj(body).ids;
    if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) throw new AdminError('bad_request', 'ids must be an array of strings');
    return a.remove(ids as string[]);
  }),
  route('GET', '/api/queue/:id', async (a, { params }) => a.show(need(params, 'id'))),
  route('POST', '/api/queue/:id/hold', async (a, { params }) => a.hold({ id: need(params, 'id') }, true)),
  route('POST', '/api/queue/:id/release', async (a, { params }) => a.hold({ id: need(params, 'id') }, false)),
  route('POST', '/api/queue/:id/bounce', async (a, { params }) => a.bounce(need(params, 'id'))),
  route('DELETE', '/api/queue/:id', async (a, { params }) => {
    const r = await a.remove([need(params, 'id')]);
    if (r.deleted === 0) throw new AdminError('not_found', `no message ${params.id} in the queue`);
    return r;
  }),
  route('GET', '/api/destinations', async (a) => a.destinations()),
  route('POST', '/api/destinations/:key/reset', async (a, { params }) => a.resetDestination(need(params, 'key'))),
  route('GET', '/api/tenants', async (a) => a.tenants()),
  route('POST', '/api/tenants/:name/suspend', async (a, { params, body }) => {
    const o = obj(body);
    return a.suspendTenant(need(params, 'name'), { destination: optString(o, 'destination'), for: optString(o, 'for') });
  }),
  route('POST', '/api/tenants/:name/resume', async (a, { params, body }) => {
    const o = obj(body);
    return a.resumeTenant(need(params, 'name'), { destination: optString(o, 'destination') });
  }),
  route('GET', '/api/suppressions/export', async (a, { query }) => new RawBody(Buffer.from(await a.exportSuppressions(query.get('all') === '1'), 'utf8'), 'text/csv; charset=utf-8')),
  route('GET', '/api/suppressions', async (a, { query }) => {
    const limitText = query.get('limit');
    const limit = limitText ? Number(limitText) : undefined;
    if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw new AdminError('bad_request', `limit must be a positive integer: ${limitText}`);
    return a.suppressions({ q: query.get('q') || undefined, limit, all: query.get('all') === '1' });
  }),
  route('POST', '/api/suppressions', async (a, { body }) => {
    const o = obj(body);
    const address = optString(o, 'address');
    if (!address) throw new AdminError('bad_request', 'address is required');
    return a.suppress({ address, class: optString(o, 'class'), reason: optString(o, 'reason'), ttl: optString(o, 'ttl') });
  }),
  route('POST', '/api/suppressions/import', async (a, { body }) => {
    const csv = optString(obj(body), 'csv');
    if (csv === undefined) throw new AdminError('bad_request', 'csv is required');
    return a.importSuppressions(csv);
  }),
  route('POST', '/api/suppressions/delete', async (a, { body }) => {
    const list = obj(body).addresses;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new AdminError('bad_request', 'addresses must be an array of strings');
    return a.unsuppress(list as string[]);
  }),
  route('DELETE', '/api/suppressions/:address', async (a, { params }) => {
    const r = await a.unsuppress([need(params, 'address')]);
    if (r.removed === 0) throw new AdminError('not_found', `${params.address} is not on the suppression list`);
    return r;
  }),
  route('POST', '/api/inject/v1', injectRoute(false)),
  route('POST', '/api/messages', injectRoute(true)),
];

/** Percent-decoding of a path segment; malformed encoding ("%zz", a lone "%E2") is the client's error (400), not ours. */
function decodePathPart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new AdminError('bad_request', `malformed percent-encoding in the path: ${s.slice(0, 100)}`);
  }
}

/** The route for a request, with its decoded path parameters; `methods` lists what the path allows when the method doesn't match. */
export function match(method: string, path: string): { route: Route; params: Record<string, string> } | { methods: string[] } | undefined {
  const methods: string[] = [];
  for (const r of ROUTES) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    if (r.method !== method) {
      methods.push(r.method);
      continue;
    }
    const params: Record<string, string> = {};
    r.names.forEach((n, i) => { params[n] = decodePathPart(m[i + 1] ?? ''); });
    return { route: r, params };
  }
  return methods.length > 0 ? { methods } : undefined;
}

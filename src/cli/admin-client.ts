/**
 * cli/admin-client — how a CLI command reaches the queue: through the running
 * server's admin API when it answers on http.listen, else by opening the
 * data_dir store directly (cli/backend, loaded only then: SQLite WAL makes
 * using it beside a live server safe). Both implement `AdminApi`, so
 * commands are written once.
 *
 * The HTTP backend sends the bearer token when one is configured; a server
 * that answers 401 is an error (a wrong token), not a reason to fall back.
 * Loads no server module, no store and no config schema: a client command
 * that finds the server reads the file's `[http]` table and pays for fetch;
 * only a stopped server's data_dir needs the whole validated config. Does
 * not format output.
 */
import type { Config } from '../config/schema.js';
import { adminEndpointOf, baseUrl, httpEnabled, type AdminEndpoint } from '../config/http-listen.js';
import { readConfigFile } from '../config/file.js';
import { AdminError, type AdminApi, type AdminErrorCode, type DestinationInfo, type FlushResult, type HoldTarget, type InjectRequest, type ListFilter, type MessageDetail, type QueueEntry } from '../http/admin-api.js';
import { unixActor } from '../http/actor.js';
import type { QueueShape, ShapeBy } from '../http/queue-shape.js';
import type { AliasReport } from '../local/alias-source.js';
import type { Throughput } from '../http/throughput.js';
import type { Trace } from '../queue/model.js';
import type { SuppressionEntry } from '../queue/suppression.js';
import type { SuppressRequest, SuppressionView } from '../http/admin-suppression.js';
import type { TenantRequest, TenantsReport } from '../http/admin-tenants.js';
import type { TenantHold } from '../queue/tenant-holds.js';

export interface Backend extends AdminApi {
  /** 'http' when talking to a running server, 'direct' when using the store file. */
  readonly kind: 'http' | 'direct';
  close(): Promise<void>;
}

export interface BackendOptions {
  /** Skip the server even if it runs (`--direct`). */
  readonly direct?: boolean;
  /**
   * How the store file is opened when the server does not answer: 'readonly' for listings (no file
   * is created, not even WAL side files), 'existing' for admin actions (a missing queue is an error,
   * NoQueueError), 'create' only for sendmail, which queues mail for the server's next start.
   */
  readonly access: 'create' | 'existing' | 'readonly';
  /** How long to wait for the server's answer to the probe. */
  readonly probeTimeoutMs?: number;
}

export class HttpBackend implements Backend {
  readonly kind = 'http';
  constructor(readonly base: string, private readonly token: string | undefined, private readonly timeoutMs = 120_000) {}

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    // Logged by the server beside the token's name as the user the CLI runs as (a claim, not an authentication).
    headers['x-halcyon-user'] = unixActor().who;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${this.base}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs),
    });
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    const text = await res.text();
    return this.answer<T>(method, path, res, text);
  }

  private answer<T>(method: string, path: string, res: Response, text: string): T {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new AdminError('unavailable', `${method} ${path}: HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      const e = value as { error?: string; message?: string };
      const code: AdminErrorCode = res.status === 404 ? 'not_found' : res.status === 413 ? 'too_big' : res.status === 400 ? 'bad_request' : 'unavailable';
      throw new AdminError(code, e.message ?? `HTTP ${res.status}`);
    }
    return value as T;
  }

  list(f: ListFilter): Promise<QueueEntry[]> {
    const q = new URLSearchParams();
    if (f.domain) q.set('domain', f.domain);
    if (f.state) q.set('state', f.state);
    if (f.olderThanMs !== undefined) q.set('older_than', `${Math.floor(f.olderThanMs)}ms`);
    if (f.q) q.set('q', f.q);
    if (f.limit !== undefined) q.set('limit', String(f.limit));
    const qs = q.toString();
    return this.call('GET', `/api/queue${qs ? `?${qs}` : ''}`);
  }
  show(id: string): Promise<MessageDetail> { return this.call('GET', `/api/queue/${encodeURIComponent(id)}`); }
  flush(o: { domain?: string; id?: string; force?: boolean }): Promise<FlushResult> { return this.call('POST', '/api/queue/flush', o); }
  hold(t: HoldTarget, held: boolean): Promise<{ ids: string[] }> {
    const verb = held ? 'hold' : 'release';
    return t.id ? this.call('POST', `/api/queue/${encodeURIComponent(t.id)}/${verb}`) : this.call('POST', `/api/queue/${verb}`, { domain: t.domain });
  }
  remove(ids: readonly string[]): Promise<{ deleted: number }> { return this.call('POST', '/api/queue/delete', { ids }); }
  bounce(id: string): Promise<{ bounced: number; skipped: number }> { return this.call('POST', `/api/queue/${encodeURIComponent(id)}/bounce`); }
  destinations(): Promise<DestinationInfo[]> { return this.call('GET', '/api/destinations'); }
  resetDestination(key: string): Promise<{ flushed: number }> { return this.call('POST', `/api/destinations/${encodeURIComponent(key)}/reset`); }
  tenants(): Promise<TenantsReport> { return this.call('GET', '/api/tenants'); }
  suspendTenant(tenant: string, req: TenantRequest): Promise<TenantHold> { return this.call('POST', `/api/tenants/${encodeURIComponent(tenant)}/suspend`, req); }
  resumeTenant(tenant: string, req: TenantRequest): Promise<{ resumed: number }> { return this.call('POST', `/api/tenants/${encodeURIComponent(tenant)}/resume`, req); }
  inject(req: InjectRequest, _trace?: Partial<Trace>): Promise<{ id: string }> {
    return this.call('POST', '/api/messages', { from: req.from, to: req.to, content: req.content, content_base64: req.contentBase64 });
  }
  config(): Promise<Config> { return this.call('GET', '/api/config'); }
  shape(by: ShapeBy): Promise<QueueShape> { return this.call('GET', `/api/queue/shape?by=${encodeURIComponent(by)}`); }
  throughput(): Promise<Throughput> { return this.call('GET', '/api/stats/throughput'); }
  reloadAliases(): Promise<AliasReport> { return this.call('POST', '/api/aliases/reload'); }
  suppressions(f: { q?: string; limit?: number; all?: boolean }): Promise<SuppressionView[]> {
    const q = new URLSearchParams();
    if (f.q) q.set('q', f.q);
    if (f.limit !== undefined) q.set('limit', String(f.limit));
    if (f.all) q.set('all', '1');
    const qs = q.toString();
    return this.call('GET', `/api/suppressions${qs ? `?${qs}` : ''}`);
  }
  suppress(req: SuppressRequest): Promise<SuppressionEntry> { return this.call('POST', '/api/suppressions', req); }
  unsuppress(addresses: readonly string[]): Promise<{ removed: number }> { return this.call('POST', '/api/suppressions/delete', { addresses }); }
  importSuppressions(csv: string): Promise<{ imported: number; problems: string[] }> { return this.call('POST', '/api/suppressions/import', { csv }); }
  async exportSuppressions(all = false): Promise<string> {
    const path = `/api/suppressions/export${all ? '?all=1' : ''}`;
    const res = await this.request('GET', path);
    if (res.ok) return res.text();
    return this.answer<never>('GET', path, res, await res.text());
  }
  async content(id: string): Promise<Buffer> {
    const path = `/api/queue/${encodeURIComponent(id)}/content`;
    const res = await this.request('GET', path);
    // Bytes as stored; an error comes as JSON like every other.
    if (res.ok) return Buffer.from(await res.arrayBuffer());
    return this.answer<never>('GET', path, res, await res.text());
  }
  async close(): Promise<void> { /* fetch keeps no state we own */ }
}

/**
 * How long a listening server may take to answer the probe before the CLI uses data_dir instead. A
 * stopped server refuses the connection at once; this only bounds a busy or wedged one, and a busy
 * machine can take seconds to schedule it.
 */
const PROBE_TIMEOUT_MS = 5_000;

/** Whether a server answers on the admin listener (any HTTP answer counts; 401 is reported by the first real call). */
async function answers(base: string, timeoutMs: number): Promise<boolean> {
  try {
    await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(timeoutMs) }).then((r) => r.body?.cancel());
    return true;
  } catch {
    return false;
  }
}

/** The server behind an admin endpoint, when one answers there. */
async function serverAt(endpoint: AdminEndpoint, probeTimeoutMs = PROBE_TIMEOUT_MS): Promise<HttpBackend | undefined> {
  return (await answers(endpoint.base, probeTimeoutMs)) ? new HttpBackend(endpoint.base, process.env.HALCYON_TOKEN || endpoint.token) : undefined;
}

/** The running server's admin API, when one answers on http.listen. */
export async function runningServer(cfg: Config, probeTimeoutMs = PROBE_TIMEOUT_MS): Promise<HttpBackend | undefined> {
  if (!httpEnabled(cfg)) return undefined;
  return serverAt({ base: baseUrl(cfg.http.listen), token: cfg.http.token }, probeTimeoutMs);
}

/**
 * The running server named by config FILE's `[http]` table, found without validating the rest of the
 * file (that is the schema's cost; the server in force validated its own): undefined when the API is
 * off or nobody answers, or when `[http]` needs the schema's word (then the caller loads the file).
 */
export async function runningServerOf(file: string | undefined, probeTimeoutMs?: number): Promise<HttpBackend | undefined> {
  const endpoint = adminEndpointOf(readConfigFile(file));
  return typeof endpoint === 'object' ? serverAt(endpoint, probeTimeoutMs) : undefined;
}

export async function openBackend(cfg: Config, opts: BackendOptions): Promise<Backend> {
  const server = opts.direct ? undefined : await runningServer(cfg, opts.probeTimeoutMs);
  return server ?? (await import('./backend.js')).openDirectBackend(cfg, opts.access);
}

/**
 * A client command's backend from config FILE: the running server when it answers (the schema is not
 * loaded), else the data_dir store of the validated config (a ConfigError lists the file's problems).
 */
export async function openBackendOf(file: string | undefined, opts: BackendOptions): Promise<Backend> {
  const server = opts.direct ? undefined : await runningServerOf(file, opts.probeTimeoutMs);
  if (server) return server;
  const { loadConfig } = await import('../config/load.js');
  return (await import('./backend.js')).openDirectBackend(loadConfig(file), opts.access);
}

/**
 * cli/backend — how a CLI command reaches the queue: through the running
 * server's admin API when it answers on http.listen, else by opening the
 * data_dir store directly (SQLite WAL makes using it beside a live server
 * safe). Both implement `AdminApi`, so commands are written once.
 *
 * The HTTP backend sends the bearer token when one is configured; a server
 * that answers 401 is an error (a wrong token), not a reason to fall back.
 * Does not format output.
 */
import type { Config } from '../config/schema.js';
import { actAsDataDirOwner } from './data-owner.js';
import { sizeBytes } from '../config/units.js';
import { unixActor, directAuditLog } from '../http/audit.js';
import { loadBounceClassifier } from '../config/bounce-rules-file.js';
import type { BounceClassifier } from '../smtp/bounce-rules.js';
import { Admin, AdminError, type AdminApi, type AdminErrorCode, type DestinationInfo, type FlushResult, type HoldTarget, type InjectRequest, type ListFilter, type MessageDetail, type QueueEntry } from '../http/admin.js';
import { httpEnabled } from '../http/server.js';
import { createDirectory } from '../inbound/directory.js';
import { Intake } from '../intake/intake.js';
import type { DkimKey } from '../intake/dkim.js';
import { loadDkimKeys } from '../intake/dkim-keys.js';
import { splitHostPort } from '../inbound/server.js';
import { Mailboxes } from '../local/maildir.js';
import type { QueueShape, ShapeBy } from '../http/queue-shape.js';
import type { Throughput } from '../http/throughput.js';
import type { Trace } from '../queue/model.js';
import type { SuppressionEntry } from '../queue/suppression.js';
import type { SuppressRequest, SuppressionView } from '../http/admin-suppression.js';
import { assertQueueFit, markQueueCreated } from '../queue/sqlite/check.js';
import { eventRoutes, openQueue, usesPostgres } from '../queue/open.js';
import { openSqliteQueue } from '../queue/sqlite/store.js';
import type { Queue } from '../queue/store.js';

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

/** The URL to reach a listener: a wildcard address is reached on loopback. */
export function baseUrl(listen: string): string {
  const { host, port } = splitHostPort(listen);
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

export class HttpBackend implements Backend {
  readonly kind = 'http';
  constructor(private readonly base: string, private readonly token: string | undefined, private readonly timeoutMs = 120_000) {}

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
  inject(req: InjectRequest, _trace?: Partial<Trace>): Promise<{ id: string }> {
    return this.call('POST', '/api/messages', { from: req.from, to: req.to, content: req.content, content_base64: req.contentBase64 });
  }
  config(): Promise<Config> { return this.call('GET', '/api/config'); }
  shape(by: ShapeBy): Promise<QueueShape> { return this.call('GET', `/api/queue/shape?by=${encodeURIComponent(by)}`); }
  throughput(): Promise<Throughput> { return this.call('GET', '/api/stats/throughput'); }
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

/** Whether a server answers on the admin listener (any HTTP answer counts; 401 is reported by the first real call). */
async function answers(base: string, timeoutMs: number): Promise<boolean> {
  try {
    await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(timeoutMs) }).then((r) => r.body?.cancel());
    return true;
  } catch {
    return false;
  }
}

/** The store file itself; the directory lets sendmail queue mail while the server is stopped (delivered when it starts). */
class DirectBackend extends Admin implements Backend {
  readonly kind = 'direct';
  constructor(cfg: Config, private readonly store: Queue) {
    const mailboxes = new Mailboxes(cfg.domains, cfg.data_dir, { hostname: cfg.hostname });
    // Keys are read when a message is first injected, so a bad key does not stop `queue list` on a stopped server.
    let keys: DkimKey[] | undefined;
    let classifier: BounceClassifier | undefined;
    super({
      store, intake: new Intake({ store: store.messages, hostname: () => cfg.hostname, clock: Date.now, dkimKeys: () => (keys ??= loadDkimKeys(cfg.dkim)) }), clock: Date.now,
      config: () => cfg, maxMessageSize: () => sizeBytes(cfg.smtp.max_message_size),
      directory: () => createDirectory(cfg, mailboxes),
      // No server log while it is stopped: actions go to DATA_DIR/admin.log (http/audit).
      actor: unixActor(), onAction: directAuditLog(cfg.data_dir, cfg.log_format),
      classify: (r) => (classifier ??= loadBounceClassifier(cfg.bounces.rules)).classify(r),
    });
  }
  close(): Promise<void> { return this.store.close(); }
}

/**
 * The store file itself. Only 'create' (sendmail) may make a queue; 'readonly' and 'existing' throw
 * NoQueueError where there is none, and neither writes the queue's marker (that is the server's).
 */
export async function openDirectBackend(cfg: Config, access: BackendOptions['access']): Promise<Backend> {
  // Run as root, this still writes files the server must own (the store, admin.log): act as the data directory's owner.
  if (access !== 'readonly') actAsDataDirOwner(cfg.data_dir);
  // A shared PostgreSQL queue is the whole cluster's, whichever node the command runs on.
  if (usesPostgres(cfg)) return new DirectBackend(cfg, await openQueue(cfg));
  // Never create an empty queue over one that lost its file (the full check is serve's and `queue check`'s).
  assertQueueFit(cfg.data_dir, { integrity: false });
  const store = await openSqliteQueue({ dataDir: cfg.data_dir, access, events: eventRoutes(cfg) });
  if (access === 'create') markQueueCreated(cfg.data_dir);
  return new DirectBackend(cfg, store);
}

/** The running server's admin API, when one answers on http.listen. */
export async function runningServer(cfg: Config, probeTimeoutMs = 1_000): Promise<HttpBackend | undefined> {
  if (!httpEnabled(cfg)) return undefined;
  const base = baseUrl(cfg.http.listen);
  return (await answers(base, probeTimeoutMs)) ? new HttpBackend(base, process.env.HALCYON_TOKEN || cfg.http.token) : undefined;
}

export async function openBackend(cfg: Config, opts: BackendOptions): Promise<Backend> {
  const server = opts.direct ? undefined : await runningServer(cfg, opts.probeTimeoutMs);
  return server ?? openDirectBackend(cfg, opts.access);
}

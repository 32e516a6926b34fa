/// <reference lib="dom" />
/**
 * http/ui/api — the dashboard's calls to the admin API (same origin), typed
 * by the server's own types (type-only imports, erased at build). Actions
 * send the CSRF token the page shell carries (meta halcyon-csrf) in the
 * X-Halcyon-CSRF header; http/csrf refuses a browser's action without it.
 * Does not touch the DOM beyond reading that meta tag.
 */
import type { DestinationInfo, FlushResult, MessageDetail, QueueEntry } from '../admin-api.js';
import type { RecentFailures } from '../failures.js';
import type { SuppressionView } from '../admin-suppression.js';

export type { DestinationInfo, FlushResult, MessageDetail, QueueEntry };

/** GET /api/queue/shape (team contract, tools' endpoint). */
export interface ShapeRow { readonly key: string; readonly total: number; readonly counts: number[] }
export interface QueueShape {
  readonly by: 'domain' | 'destination';
  /** Upper bounds in minutes; null is the open last bucket. */
  readonly bucketsMinutes: (number | null)[];
  readonly total: ShapeRow;
  readonly held: ShapeRow;
  readonly rows: ShapeRow[];
  /** Held recipients per key (tools' addition to the contract). */
  readonly heldRows?: ShapeRow[];
}
/** GET /api/stats/throughput (team contract): this node's last 60 minutes, oldest first. */
export interface Throughput { readonly node: string; readonly minutes: { at: number; sent: number; deferred: number; bounced: number }[] }

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const csrf = (): string => document.querySelector<HTMLMetaElement>('meta[name="halcyon-csrf"]')?.content ?? '';

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers['x-halcyon-csrf'] = csrf();
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  const text = await res.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(res.status, `${method} ${path}: HTTP ${res.status}`);
  }
  if (!res.ok) throw new ApiError(res.status, (value as { message?: string }).message ?? `HTTP ${res.status}`);
  return value as T;
}

const id = (s: string): string => encodeURIComponent(s);

export const api = {
  list: (q: { q?: string; state?: string; limit?: number }): Promise<QueueEntry[]> => {
    const p = new URLSearchParams();
    if (q.q) p.set('q', q.q);
    if (q.state) p.set('state', q.state);
    if (q.limit) p.set('limit', String(q.limit));
    const s = p.toString();
    return call('GET', `/api/queue${s ? `?${s}` : ''}`);
  },
  show: (m: string): Promise<MessageDetail> => call('GET', `/api/queue/${id(m)}`),
  destinations: (): Promise<DestinationInfo[]> => call('GET', '/api/destinations'),
  shape: (): Promise<QueueShape> => call('GET', '/api/queue/shape?by=destination'),
  throughput: (): Promise<Throughput> => call('GET', '/api/stats/throughput'),
  failures: (): Promise<RecentFailures> => call('GET', '/api/stats/failures'),
  suppressions: (limit: number): Promise<SuppressionView[]> => call('GET', `/api/suppressions?limit=${limit}`),
  unsuppress: (address: string): Promise<{ removed: number }> => call('DELETE', `/api/suppressions/${id(address)}`),
  flush: (o: { id?: string; domain?: string; force?: boolean }): Promise<FlushResult> => call('POST', '/api/queue/flush', o),
  hold: (m: string): Promise<{ ids: string[] }> => call('POST', `/api/queue/${id(m)}/hold`),
  release: (m: string): Promise<{ ids: string[] }> => call('POST', `/api/queue/${id(m)}/release`),
  bounce: (m: string): Promise<{ bounced: number; skipped: number }> => call('POST', `/api/queue/${id(m)}/bounce`),
  remove: (m: string): Promise<{ deleted: number }> => call('DELETE', `/api/queue/${id(m)}`),
};

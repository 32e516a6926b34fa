/**
 * test/ops/helpers — small helpers for the operations tests: polling with a
 * bound, JSON log lines of a spawned server, Prometheus text parsing, and
 * calling the admin API. No assertions of their own.
 */
import type { SpawnedHalcyon } from '../support/halcyon.js';

/** Polls `pred` every 50 ms, at most `tries` times; throws with `what` when it never holds. */
export async function until<T>(what: string, pred: () => T | undefined | false | Promise<T | undefined | false>, tries = 200): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await pred();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export type LogLine = Record<string, unknown>;

export function logLines(h: SpawnedHalcyon): LogLine[] {
  return h.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

/** "name{a="x",b="y"} 3" lines → value lookups by name and labels. */
export function parseProm(text: string): (name: string, labels?: Record<string, string>) => number | undefined {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return (name, labels = {}) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

export async function api(port: number, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: unknown; text: string }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

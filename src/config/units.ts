/**
 * config/units — human durations ("500ms", "15m", "4h", "5d"), sizes
 * ("35MiB", "100MB", "1024"), rates ("100/min"), CIDRs ("10.0.0.0/8") and
 * resolver addresses ("127.0.0.1:53") and listen addresses ("[::1]:25") as
 * the config file writes them.
 *
 * Pure parsing only; the schema decides which setting takes which unit.
 */

import { isIP } from 'node:net';

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds for a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_MS[m[2]!]!);
}

export function durationMs(text: string): number {
  const v = parseDuration(text);
  if (v === undefined) throw new RangeError(`not a duration: ${text}`);
  return v;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const SIZE_BYTES: Record<string, number> = {
  b: 1, k: 1024, kib: 1024, kb: 1000, m: 1024 ** 2, mib: 1024 ** 2, mb: 1000 ** 2, g: 1024 ** 3, gib: 1024 ** 3, gb: 1000 ** 3,
};

/** Bytes for a size string ("35MiB", "100MB", "512k", "1024"), or undefined. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isInteger(text) && text >= 0 ? text : undefined;
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * SIZE_BYTES[(m[2] ?? 'b').toLowerCase()]!);
}

export function sizeBytes(text: string | number): number {
  const v = parseSize(text);
  if (v === undefined) throw new RangeError(`not a size: ${text}`);
  return v;
}

/** "100/min" → messages per millisecond window; undefined when not a rate. */
export function parseRate(text: string): { count: number; perMs: number } | undefined {
  const m = /^(\d+)\s*\/\s*(s|sec|m|min|h|hour)$/.exec(text.trim());
  if (!m || Number(m[1]) < 1) return undefined;
  const unit: Record<string, number> = { s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, hour: 3_600_000 };
  return { count: Number(m[1]), perMs: unit[m[2]!]! };
}

/** A warm-up day's cap, "50/day" → 50; undefined when malformed or below 1. */
export function parseDailyCap(text: string): number | undefined {
  const m = /^(\d+)\s*\/\s*day$/.exec(text.trim());
  return m && Number(m[1]) >= 1 && Number.isSafeInteger(Number(m[1])) ? Number(m[1]) : undefined;
}

/** "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128); undefined when the address or prefix is bad. */
export function parseCidr(text: string): { address: string; bits: number; family: 'ipv4' | 'ipv6' } | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  const bitsText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) return undefined;
  return { address, bits: Number(bitsText), family: v === 4 ? 'ipv4' : 'ipv6' };
}

/** A DNS server as node:dns `setServers` takes it: "ip", "ip:port" or "[v6]:port" (port 1–65535). */
export function parseResolverAddress(text: string): { address: string; port: number } | undefined {
  if (isIP(text) !== 0) return { address: text, port: 53 };
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([0-9.]+):(\d{1,5})$/.exec(text);
  if (!m || isIP(m[1]!) === 0) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { address: m[1]!, port } : undefined;
}

/** "host:port", "[v6]:port" or "v6addr" is not accepted without brackets. */
export const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** A listen address ("127.0.0.1:25", "[::1]:25", ":25") split into host (brackets removed) and port. */
export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

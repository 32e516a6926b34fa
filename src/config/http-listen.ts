/**
 * config/http-listen — whether the admin HTTP listener is on (`[http]
 * enabled` and a non-empty `listen`), the URL a client on this host reaches
 * it at (a wildcard address is reached on loopback), and the same read from
 * a config file as written, before validation: the CLI finds a running
 * server from the file's `[http]` table alone, without loading the schema.
 *
 * Pure; used by the server (http/server, config/schema for the defaults) and
 * the CLI. Does not probe or connect.
 */
import type { Config } from './schema.js';
import { HOST_PORT, splitHostPort } from './units.js';

/** `[http] listen` and `enabled` when the file does not set them (config/schema declares them with these). */
export const HTTP_DEFAULTS = { listen: '127.0.0.1:8025', enabled: true } as const;

export const httpEnabled = (cfg: Config): boolean => cfg.http.enabled && cfg.http.listen !== '';

/** The URL to reach a listener: a wildcard address is reached on loopback. */
export function baseUrl(listen: string): string {
  const { host, port } = splitHostPort(listen);
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/** Where the admin API of the server this config runs is, and the token the CLI sends. */
export interface AdminEndpoint { readonly base: string; readonly token: string | undefined }

/**
 * The admin endpoint from a config file's tree as written (config/file), with the schema's defaults:
 * 'disabled' when the API is off, 'unsure' when `[http]` holds something the schema would refuse
 * (then validate the whole file: its errors say what is wrong).
 */
export function adminEndpointOf(raw: Readonly<Record<string, unknown>>): AdminEndpoint | 'disabled' | 'unsure' {
  const http = raw.http ?? {};
  if (typeof http !== 'object' || http === null || Array.isArray(http)) return 'unsure';
  const { listen = HTTP_DEFAULTS.listen, enabled = HTTP_DEFAULTS.enabled, token } = http as Record<string, unknown>;
  if (typeof listen !== 'string' || typeof enabled !== 'boolean' || (token !== undefined && typeof token !== 'string')) return 'unsure';
  if (!enabled || listen === '') return 'disabled';
  if (!HOST_PORT.test(listen)) return 'unsure';
  return { base: baseUrl(listen), token };
}

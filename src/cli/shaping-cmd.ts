/**
 * cli/shaping-cmd — `halcyon shaping explain DOMAIN`: how Halcyon would
 * shape mail to a domain — its MX set (asked of the configured resolver,
 * [dns] servers), the destination key, the provider preset that matches and
 * why (or why none does), the effective limits (connections, messages per
 * connection, rate, TLS policy) and the reply rules that apply there, each
 * with its source. `--json` prints the same as one object.
 *
 * It reads the configuration and DNS only: what a running server learned
 * (adaptive rate, rules in force) is `halcyon destinations`. Changes nothing.
 */
import { configFileFrom, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { durationMs, parseRate } from '../config/units.js';
import { createResolver, type MxHostSet } from '../delivery/resolve.js';
import { destinationKey } from '../delivery/route.js';
import { stricterTls } from '../delivery/smtp-transport.js';
import { perMinute } from '../destination/adaptive-rate.js';
import { hostsOf, isDomainKey, mxDestinationKey } from '../destination/key.js';
import { Shaping } from '../destination/providers.js';
import { printable } from './format.js';

export interface Explanation {
  readonly domain: string;
  readonly mx: MxHostSet;
  readonly destination: string;
  readonly provider?: { readonly name: string; readonly why: string; readonly origin: string; readonly limitsSource: string };
  /** Why no provider matched, when none did. */
  readonly noProvider?: string;
  readonly limits: {
    readonly connections: number;
    readonly initialConnections: number;
    readonly messagesPerConnection: number;
    readonly recipientsPerTransaction: number;
    /** Messages per minute, paced (a preset's) or as configured; undefined: none. */
    readonly ratePerMinute?: number;
    readonly rateScope: string;
    readonly tls: string;
  };
  readonly rules: readonly { readonly rule: string; readonly scope: string; readonly source?: string }[];
}

/** The explanation for a domain whose MX host set is known (pure but for the presets file, read once). */
export function explain(cfg: Config, domain: string, mx: MxHostSet): Explanation {
  const d = cfg.delivery;
  const routed = destinationKey(domain, cfg.routes);
  const destination = mx.kind === 'hosts' && d.destination_by === 'mx' && isDomainKey(routed) ? mxDestinationKey(mx.hosts) : routed;
  const shaping = new Shaping(() => cfg);
  const s = shaping.of(destination);
  const p = s.provider;
  const configuredRate = d.destination_rate ? parseRate(d.destination_rate) : undefined;
  const rate = s.rate ?? configuredRate;
  // A routed domain's own `tls` is the route's business (`halcyon config show routes`): this is the MX path's.
  const tls = routed === domain ? stricterTls(d.tls, s.tls) : `the route's (${routed})`;
  const connections = Math.min(d.max_connections_per_destination, s.maxConnections ?? Infinity);
  const rules = shaping.rules().filter((r) => (r.provider !== undefined ? r.provider === p?.preset.name : r.destinationRe.test(destination)))
    .map((r) => ({ rule: r.text, scope: r.provider !== undefined ? s.scope : destination, ...(r.source !== undefined ? { source: r.source } : {}) }));
  const noProvider = p ? undefined
    : mx.kind !== 'hosts' ? `no MX host set (${mx.why})`
      : hostsOf(destination).length === 0 ? `the destination is ${destination} (a route or destination_by = "domain"), not an MX host set`
        : !cfg.shaping.enabled && Object.keys(cfg.shaping.providers).length === 0 ? 'provider shaping is off ([shaping] enabled = false)'
          : `no provider's suffixes cover every host of ${mx.hosts.join(', ')}`;
  return {
    domain, mx, destination,
    ...(p ? { provider: { name: p.preset.name, why: p.why, origin: p.preset.origin, limitsSource: p.preset.limitsSource } } : {}),
    ...(noProvider !== undefined ? { noProvider } : {}),
    limits: {
      connections, initialConnections: Math.min(d.initial_connections_per_destination, connections),
      messagesPerConnection: Math.min(d.max_messages_per_connection, s.maxMessagesPerConnection ?? Infinity),
      recipientsPerTransaction: d.max_recipients_per_transaction,
      ...(rate ? { ratePerMinute: perMinute(rate) } : {}),
      rateScope: s.scope, tls,
    },
    rules,
  };
}

export function formatExplanation(e: Explanation): string {
  const l = e.limits;
  const out = [
    `domain:       ${printable(e.domain)}`,
    `MX set:       ${e.mx.kind === 'hosts' ? e.mx.hosts.join(', ') : `none (${e.mx.why})`}`,
    `destination:  ${e.destination}`,
    e.provider ? `provider:     ${e.provider.name} (${e.provider.origin})` : `provider:     none — ${e.noProvider ?? ''}`,
    ...(e.provider ? [`  why:        ${e.provider.why}`, `  limits from: ${e.provider.limitsSource}`] : []),
    'limits:',
    `  connections:              ${l.connections} (starting at ${l.initialConnections}, per MX set)`,
    `  messages per connection:  ${l.messagesPerConnection}`,
    `  recipients per transaction: ${l.recipientsPerTransaction}`,
    `  rate:                     ${l.ratePerMinute !== undefined ? `${Math.round(l.ratePerMinute * 10) / 10}/min, shared by ${l.rateScope}${e.provider ? ' (paced; a slow_down rule cuts it, deliveries grow it back)' : ''}` : 'none'}`,
    `  TLS:                      ${l.tls}`,
    `rules (first match wins):${e.rules.length === 0 ? ' none' : ''}`,
    ...e.rules.flatMap((r) => [`  ${r.rule}${r.scope !== e.destination ? ` — acts on ${r.scope}` : ''}`, ...(r.source ? [`    source: ${r.source}`] : [])]),
  ];
  return `${out.join('\n')}\n`;
}

/** `halcyon shaping explain DOMAIN [--json]`. */
export async function shapingExplain(domain: string, opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig(configFileFrom(opts.config));
  const resolver = createResolver({ servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) });
  const name = domain.trim().toLowerCase().replace(/\.$/, '');
  let mx: MxHostSet;
  try {
    mx = resolver.mxHostSet ? await resolver.mxHostSet(name) : { kind: 'none', why: 'temporary' };
  } catch {
    mx = { kind: 'none', why: 'temporary' };
  }
  const e = explain(cfg, name, mx);
  process.stdout.write(opts.json ? `${JSON.stringify(e, null, 2)}\n` : formatExplanation(e));
}

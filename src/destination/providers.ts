/**
 * destination/providers — which provider preset (config/providers-file) a
 * destination is, and why; and the shaping it gets from it: connections,
 * messages per connection, paced rate, TLS policy, and the reply rules in
 * force there (the operator's `[[delivery.rules]]` first, then the
 * providers'), with the **scope** its rules and rate act on.
 *
 * A destination is a provider's when EVERY host of its MX set ends in one of
 * the provider's suffixes (a domain that also lists a host elsewhere is not
 * shaped as the provider); the first provider that matches wins. Its scope is
 * `provider:<name>`: a rule a reply triggers through one of the provider's MX
 * sets, its adaptive rate and its token bucket hold for every destination of
 * the provider (providers throttle per sending IP, not per MX set). Any other
 * destination is its own scope. Connections, backoff and probes stay per MX
 * set (the gate row of the destination).
 *
 * From a source address ([egress], a sourced key `mx:…@ip2`), the scope is
 * the provider's as seen from that source (`provider:google@ip2`): providers
 * throttle per sending IP, so a rule triggered through one source leaves the
 * others alone. Rules' destination globs are matched on the destination
 * without its source.
 *
 * `Shaping` recompiles when a reload hands in a new configuration and
 * remembers each destination's match; it reads no DNS and keeps no state
 * beyond that.
 */
import type { Config, TlsPolicy } from '../config/schema.js';
import { providersFor, type ProviderPreset } from '../config/providers-file.js';
import { hostsOf, sourcedKey, splitSource } from './key.js';
import type { LastReply } from '../queue/model.js';
import { compileProviderRules, compileRules, matchRule, type ReplyRule } from './reply-rules.js';

export interface ProviderMatch {
  readonly preset: ProviderPreset;
  /** "aspmx.l.google.com matches *.google.com; alt1.aspmx.l.google.com matches *.google.com". */
  readonly why: string;
}

/** The scope key of a provider: its rules in force and adaptive rate live on the gate row of this key. */
export const providerScope = (name: string): string => `provider:${name}`;

const suffixOf = (pattern: string): string => pattern.slice(1).toLowerCase(); // "*.google.com" → ".google.com"

/** The first preset every host of the destination's MX set matches, and why. Pure. */
export function matchProvider(presets: readonly ProviderPreset[], destination: string): ProviderMatch | undefined {
  const hosts = hostsOf(destination);
  if (hosts.length === 0) return undefined;
  for (const preset of presets) {
    const why: string[] = [];
    for (const host of hosts) {
      const hit = preset.mx.find((m) => host.toLowerCase().endsWith(suffixOf(m)));
      if (!hit) break;
      why.push(`${host} matches ${hit}`);
    }
    if (why.length === hosts.length) return { preset, why: why.join('; ') };
  }
  return undefined;
}

/** The shaping of one destination. */
export interface DestinationShaping {
  readonly provider?: ProviderMatch;
  /** Where its rules in force, adaptive rate and tokens are kept: `provider:<name>`, or the destination itself. */
  readonly scope: string;
  readonly maxConnections?: number;
  readonly maxMessagesPerConnection?: number;
  readonly rate?: { readonly count: number; readonly perMs: number };
  readonly tls?: TlsPolicy;
}

interface Compiled {
  readonly from: Config;
  readonly presets: readonly ProviderPreset[];
  readonly rules: readonly ReplyRule[];
  readonly byDestination: Map<string, DestinationShaping>;
}

/** Remembered matches per configuration; a map of destinations seen, dropped with the configuration. */
const MAX_REMEMBERED = 100_000;

export class Shaping {
  private compiled: Compiled | undefined;

  /** `config` is read at use time (config/live): a reload's presets and rules apply at once. */
  constructor(private readonly config: () => Config) {}

  private get c(): Compiled {
    const cfg = this.config();
    if (!this.compiled || this.compiled.from.shaping !== cfg.shaping || this.compiled.from.delivery.rules !== cfg.delivery.rules) {
      const presets = providersFor(cfg.shaping);
      const own = compileRules(cfg.delivery.rules);
      this.compiled = { from: cfg, presets, rules: [...own, ...compileProviderRules(presets, own.length)], byDestination: new Map() };
    }
    return this.compiled;
  }

  /** The presets in force (matching order). */
  presets(): readonly ProviderPreset[] {
    return this.c.presets;
  }

  /** Every reply rule in force: the operator's, then the providers'. */
  rules(): readonly ReplyRule[] {
    return this.c.rules;
  }

  /** The shaping of a destination (remembered per configuration). */
  of(destination: string): DestinationShaping {
    const c = this.c;
    let s = c.byDestination.get(destination);
    if (!s) {
      const provider = matchProvider(c.presets, destination);
      const p = provider?.preset;
      s = provider && p ? {
        provider, scope: sourcedKey(providerScope(p.name), splitSource(destination).source),
        ...(p.maxConnections !== undefined ? { maxConnections: p.maxConnections } : {}),
        ...(p.maxMessagesPerConnection !== undefined ? { maxMessagesPerConnection: p.maxMessagesPerConnection } : {}),
        ...(p.rate ? { rate: p.rate } : {}),
        ...(p.tls ? { tls: p.tls } : {}),
      } : { scope: destination };
      if (c.byDestination.size >= MAX_REMEMBERED) c.byDestination.clear();
      c.byDestination.set(destination, s);
    }
    return s;
  }

  /** The rule a reply from the destination triggers pauses it (suspend, slow_down): no next MX host is worth a try. */
  pauses(destination: string, reply: Pick<LastReply, 'code' | 'enhanced' | 'text'>): boolean {
    const rule = matchRule(this.c.rules, splitSource(destination).destination, reply, this.of(destination).provider?.preset.name);
    return rule?.action === 'suspend' || rule?.action === 'slow_down';
  }

  /** The scope a destination's rules and rate act on. */
  scopeOf(destination: string): string {
    return this.of(destination).scope;
  }
}

/**
 * config/providers-file — the provider presets in force: the shipped
 * data/providers.toml (read once per process, found beside the package like
 * data/bounce-classes.toml) with the operator's `[shaping]` on top — a
 * shipped provider overridden field by field or turned off
 * (`[shaping.providers.NAME] enabled = false`), a provider of the operator's
 * own added (it needs `mx`), all shipped ones off with `[shaping] enabled =
 * false`. A bad file or override is a ConfigError naming it, so `config
 * check`, startup and SIGHUP refuse it like any other bad setting.
 *
 * Does not match destinations (destination/providers) or apply anything.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { ConfigError } from './file.js';
import { shippedDataPath } from './shipped-data.js';
import { providerSettings, type Config, type ProviderRuleConfig, type TlsPolicy } from './schema.js';
import { parseRate } from './units.js';

const SHIPPED = join('data', 'providers.toml');

/** One provider's shaping, as in force. */
export interface ProviderPreset {
  readonly name: string;
  /** MX host suffixes as written ("*.google.com"). */
  readonly mx: readonly string[];
  readonly maxConnections?: number;
  readonly maxMessagesPerConnection?: number;
  /** The paced rate ("600/min" as written, and parsed). */
  readonly rateText?: string;
  readonly rate?: { readonly count: number; readonly perMs: number };
  readonly tls?: TlsPolicy;
  readonly rules: readonly ProviderRuleConfig[];
  /** Where the numbers come from (the provider's page, or "Halcyon's choice" and why). */
  readonly limitsSource: string;
  /** "data/providers.toml", "data/providers.toml, overridden in halcyon.toml" or "halcyon.toml". */
  readonly origin: string;
}

const fileSchema = z.strictObject({
  provider: z.array(z.strictObject({
    name: z.string().regex(/^[a-z0-9-]+$/),
    ...providerSettings,
    mx: providerSettings.mx.unwrap(),
    limits_source: z.string().min(1),
  })).min(1),
});

type Entry = z.output<typeof fileSchema>['provider'][number];

/** The shipped file: the first data/providers.toml above this module (dist/src/config or src/config). */
export function shippedProvidersPath(): string {
  return shippedDataPath('providers.toml', 'shaping');
}

/** Parses a providers file's text; problems name the provider. Exported for tests. */
export function parseProviders(text: string, file: string): Entry[] {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    throw new ConfigError(file, [{ path: 'provider', message: (err as Error).message }]);
  }
  const r = fileSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(file, r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  const names = r.data.provider.map((p) => p.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new ConfigError(file, [{ path: 'provider', message: `two providers are named "${dup}"` }]);
  return r.data.provider;
}

let shipped: Entry[] | undefined;

function shippedEntries(): Entry[] {
  if (!shipped) {
    const file = shippedProvidersPath();
    shipped = parseProviders(readFileSync(file, 'utf8'), file);
  }
  return shipped;
}

type Override = Config['shaping']['providers'][string];

function preset(base: Partial<Entry> & { name: string }, over: Override | undefined, origin: string): ProviderPreset {
  const pick = <K extends keyof Override & keyof Entry>(k: K): unknown => (over?.[k] !== undefined ? over[k] : base[k]);
  const rateText = pick('rate') as string | undefined;
  const rate = rateText !== undefined ? parseRate(rateText) : undefined;
  const out = {
    name: base.name, mx: (pick('mx') ?? []) as string[], rules: (pick('rules') ?? []) as ProviderRuleConfig[],
    limitsSource: base.limits_source ?? 'halcyon.toml', origin,
    maxConnections: pick('max_connections') as number | undefined, maxMessagesPerConnection: pick('max_messages_per_connection') as number | undefined,
    rateText, rate, tls: pick('tls') as TlsPolicy | undefined,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as unknown as ProviderPreset;
}

/** The presets in force for a configuration, in matching order (shipped first, then the operator's own). */
export function providersFor(cfg: Config['shaping']): ProviderPreset[] {
  const out: ProviderPreset[] = [];
  const known = new Set<string>();
  for (const e of shippedEntries()) {
    known.add(e.name);
    const over = cfg.providers[e.name];
    if (!cfg.enabled || over?.enabled === false) continue;
    out.push(preset(e, over, over ? `${SHIPPED}, overridden in halcyon.toml` : SHIPPED));
  }
  for (const [name, over] of Object.entries(cfg.providers)) {
    if (known.has(name) || !over.enabled) continue;
    if (!over.mx) throw new ConfigError(undefined, [{ path: `shaping.providers.${name}.mx`, message: `"${name}" is not a shipped provider: it needs mx (e.g. ["*.example.net"])` }]);
    out.push(preset({ name }, over, 'halcyon.toml'));
  }
  return out;
}

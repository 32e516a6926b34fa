/**
 * config/docs — renders docs/configuration.md from the schema, so every
 * setting is documented once (its `.describe()` in config/schema) and the
 * docs cannot drift: a test compares the file with this output. The man
 * page (cli/man) lists the same rows.
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

export interface Row { key: string; type: string; def: string; meaning: string }

function unwrap(t: z.ZodType): { inner: z.ZodType; def?: unknown } {
  let cur: z.ZodType = t;
  let def: unknown;
  for (let i = 0; i < 10; i++) {
    const d = (cur as unknown as { def: { type: string; innerType?: z.ZodType; defaultValue?: unknown; in?: z.ZodType } }).def;
    if (d.type === 'default' || d.type === 'prefault') {
      if (def === undefined) def = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
      cur = d.innerType!;
    } else if (d.type === 'optional' || d.type === 'nullable') cur = d.innerType!;
    else if (d.type === 'pipe') cur = d.in!;
    else break;
  }
  return { inner: cur, def };
}

function typeName(t: z.ZodType): string {
  const d = (t as unknown as { def: { type: string; entries?: Record<string, string>; element?: z.ZodType; options?: z.ZodType[] } }).def;
  switch (d.type) {
    case 'enum': return Object.values(d.entries ?? {}).map((v) => `"${v}"`).join(' | ');
    case 'array': return `array of ${typeName(unwrap(d.element!).inner)}`;
    case 'union': return (d.options ?? []).map((o) => typeName(unwrap(o).inner)).join(' or ');
    case 'record': return 'table';
    case 'object': return 'table';
    default: return d.type;
  }
}

function walk(schema: z.ZodType, prefix: string, rows: Row[]): void {
  const { inner, def } = unwrap(schema);
  const d = (inner as unknown as { def: { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType } }).def;
  const meaning = schema.description ?? inner.description ?? '';
  if (prefix) {
    const shown = def === undefined ? '—' : prefix === 'hostname' || prefix === 'node_id' ? '(this machine\'s name)' : `\`${JSON.stringify(def)}\``;
    rows.push({ key: prefix, type: typeName(inner), def: d.type === 'object' ? '' : shown, meaning });
  }
  if (d.type === 'object' && d.shape) for (const [k, v] of Object.entries(d.shape)) walk(v, prefix ? `${prefix}.${k}` : k, rows);
  const rec = (d as { valueType?: z.ZodType }).valueType;
  if (d.type === 'record' && rec) {
    const val = unwrap(rec).inner as unknown as { def: { type: string; shape?: Record<string, z.ZodType> } };
    if (val.def.type === 'object' && val.def.shape) for (const [k, v] of Object.entries(val.def.shape)) walk(v, `${prefix}.NAME.${k}`, rows);
  }
  if (d.type === 'array' && d.element) {
    const el = unwrap(d.element).inner as unknown as { def: { type: string; shape?: Record<string, z.ZodType> } };
    if (el.def.type === 'object' && el.def.shape) for (const [k, v] of Object.entries(el.def.shape)) walk(v, `${prefix}[].${k}`, rows);
  }
}

/** Every setting as a row (key path, type, default, meaning): what docs/configuration.md and the man page list. */
export function configRows(): Row[] {
  const rows: Row[] = [];
  walk(configSchema, '', rows);
  return rows;
}

export function configDocs(): string {
  const rows = configRows();
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '# Halcyon configuration',
    '',
    'Generated from `src/config/schema.ts` by `halcyon config docs`; do not edit by hand.',
    'One TOML file (`halcyon serve --config FILE` or `HALCYON_CONFIG`). Unknown keys are errors.',
    'Durations: `"500ms"`, `"15m"`, `"4h"`, `"5d"`. Sizes: `"35MiB"`, `"100MB"`, `"512k"`, or bytes.',
    '',
    '| key | type | default | meaning |',
    '|---|---|---|---|',
    ...rows.map((r) => `| \`${r.key}\` | ${esc(r.type)} | ${esc(r.def)} | ${esc(r.meaning)} |`),
    '',
  ].join('\n');
}

/**
 * bench/table — the bench's one result table, printed as Markdown so the
 * same text goes into docs/benchmarks.md. A row holds a figure for Halcyon
 * and for Postfix, which way the ratio is taken, and for throughput rows the
 * ceiling (smtp-source straight into smtp-sink). Missing figures print "—".
 *
 * It formats only; it measures nothing and judges nothing.
 */

export interface Row {
  readonly what: string;
  readonly unit: string;
  readonly halcyon: number | undefined;
  readonly postfix: number | undefined;
  /** 'hp' = Halcyon/Postfix (higher is better for Halcyon), 'ph' = Postfix/Halcyon (lower-is-better figures), 'none'. */
  readonly ratio: 'hp' | 'ph' | 'none';
  readonly ceiling?: number | undefined;
  /** Free text for the row (partial runs, what was counted). */
  readonly note?: string;
}

const fmt = (v: number | undefined, digits?: number): string => {
  if (v === undefined || !Number.isFinite(v)) return '—';
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};

function ratioOf(r: Row): string {
  if (r.ratio === 'none' || r.halcyon === undefined || r.postfix === undefined || r.halcyon === 0 || r.postfix === 0) return '—';
  const v = r.ratio === 'hp' ? r.halcyon / r.postfix : r.postfix / r.halcyon;
  return `${fmt(v, 2)} (${r.ratio === 'hp' ? 'H/P' : 'P/H'})`;
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['Figure', 'Unit', 'Halcyon', 'Postfix', 'Ratio', 'Ceiling', 'Halcyon / ceiling', 'Notes'];
  const body = rows.map((r) => [
    r.what, r.unit, fmt(r.halcyon, r.unit === 'count' ? 0 : undefined), fmt(r.postfix, r.unit === 'count' ? 0 : undefined), ratioOf(r),
    r.ceiling === undefined ? '' : fmt(r.ceiling),
    r.ceiling === undefined || r.halcyon === undefined ? '' : `${fmt((100 * r.halcyon) / r.ceiling, 0)} %`,
    r.note ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

/**
 * bench/table — the bench's one result table, printed as Markdown so the
 * same text goes into docs/benchmarks.md. A row holds the runs of a figure
 * for Halcyon and for Postfix (and, for throughput, the ceiling: smtp-source
 * straight into smtp-sink); each cell prints the median and, when there were
 * several runs, their range, so noise is visible next to the figure. The
 * ratio is of the medians. Missing figures print "—".
 *
 * It formats only; it measures nothing and judges nothing.
 */

/** One figure's runs; an undefined run is one that did not produce the figure (budget ran out). */
export type Runs = readonly (number | undefined)[];

export interface Row {
  readonly what: string;
  readonly unit: string;
  readonly halcyon: Runs;
  readonly postfix: Runs;
  /** 'hp' = Halcyon/Postfix (higher is better for Halcyon), 'ph' = Postfix/Halcyon (lower-is-better figures), 'none'. */
  readonly ratio: 'hp' | 'ph' | 'none';
  readonly ceiling?: Runs;
  /** Free text for the row (partial runs, what was counted). */
  readonly note?: string;
}

/** The median of the runs that produced a figure (undefined when none did). */
export function median(runs: Runs): number | undefined {
  const v = runs.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2;
}

const fmt = (v: number | undefined, digits?: number): string => {
  if (v === undefined || !Number.isFinite(v)) return '—';
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};

/** "median" for one run, "median (min–max)" for several; a run without a figure shows as "?" in the count. */
function cell(runs: Runs, digits?: number): string {
  const m = median(runs);
  const ok = runs.filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (ok.length <= 1) return fmt(m, digits) + (runs.length > ok.length && ok.length ? ' (1 run)' : '');
  const missing = runs.length - ok.length;
  return `${fmt(m, digits)} (${fmt(Math.min(...ok), digits)}–${fmt(Math.max(...ok), digits)}${missing ? `, ${missing} without` : ''})`;
}

function ratioOf(r: Row): string {
  const h = median(r.halcyon);
  const p = median(r.postfix);
  if (r.ratio === 'none' || h === undefined || p === undefined || h === 0 || p === 0) return '—';
  const v = r.ratio === 'hp' ? h / p : p / h;
  return `${fmt(v, 2)} (${r.ratio === 'hp' ? 'H/P' : 'P/H'})`;
}

export function renderTable(rows: readonly Row[]): string {
  const head = ['Figure', 'Unit', 'Halcyon', 'Postfix', 'Ratio', 'Ceiling', 'Halcyon / ceiling', 'Notes'];
  const body = rows.map((r) => {
    const digits = r.unit === 'count' ? 0 : undefined;
    const h = median(r.halcyon);
    const c = r.ceiling === undefined ? undefined : median(r.ceiling);
    return [
      r.what, r.unit, cell(r.halcyon, digits), cell(r.postfix, digits), ratioOf(r),
      r.ceiling === undefined ? '' : cell(r.ceiling),
      c === undefined || h === undefined ? '' : `${fmt((100 * h) / c, 0)} %`,
      r.note ?? '',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

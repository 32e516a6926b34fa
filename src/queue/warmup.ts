/**
 * queue/warmup — a source address's warm-up, as the queue keeps it for every
 * node: the UTC day the source was first used under a warm-up schedule, and
 * how many recipients it sent each day to each scope (a provider,
 * `provider:google`, or a destination that is no provider's). Days are whole
 * UTC days, counted as days since 1970-01-01 (`utcDay`).
 *
 * `warmupTake` is the decision, pure, shared by both queues (each runs it on
 * the rows it read and writes back in one atomic section: an IMMEDIATE
 * transaction; a transaction under the key's advisory lock): day N of the
 * schedule (N = 1 on the first day) caps the day's count; a take is granted
 * up to what is left under the cap (a batch may be cut), and counted. After
 * the schedule's last day there is no cap and nothing is counted.
 *
 * Does not choose sources (destination/sources) nor say what to do with mail
 * over the cap (destination/service: it waits for the next day).
 */

export const DAY_MS = 86_400_000;

/** The UTC day of a time: whole days since 1970-01-01. */
export const utcDay = (ms: number): number => Math.floor(ms / DAY_MS);

/** When the UTC day after `ms` begins. */
export const nextUtcDay = (ms: number): number => (utcDay(ms) + 1) * DAY_MS;

export interface WarmupRequest {
  readonly source: string;
  /** `provider:<name>` or a destination key (without the source). */
  readonly scope: string;
  readonly now: number;
  /** The schedule: recipients per day, day 1 first. */
  readonly caps: readonly number[];
  /** Recipients the caller wants to send now. */
  readonly want: number;
}

export interface WarmupTake {
  /** Recipients it may send now (0..want). */
  readonly granted: number;
  /** The schedule's day today (1 = the first day); beyond caps.length: no cap. */
  readonly day: number;
  /** Today's cap (undefined: none) and what was counted today, this take included. */
  readonly cap?: number;
  readonly sent: number;
}

/** What is stored: the source's first day (undefined: never used) and today's count for the scope. */
export interface WarmupStored {
  readonly firstDay: number | undefined;
  readonly sent: number;
}

/** The decision: what a take gets and what to store (`firstDay`, `sent` for today). Pure. */
export function warmupTake(stored: WarmupStored, req: WarmupRequest): { readonly take: WarmupTake; readonly firstDay: number; readonly sent: number } {
  const today = utcDay(req.now);
  const firstDay = stored.firstDay ?? today;
  const day = today - firstDay + 1;
  const cap = day >= 1 ? req.caps[day - 1] : req.caps[0];
  if (cap === undefined) return { take: { granted: req.want, day, sent: stored.sent }, firstDay, sent: stored.sent };
  const granted = Math.max(0, Math.min(req.want, cap - stored.sent));
  const sent = stored.sent + granted;
  return { take: { granted, day, cap, sent }, firstDay, sent };
}

/** One row of what a view shows: a source's count today for a scope, with its schedule day. */
export interface WarmupCount {
  readonly source: string;
  readonly scope: string;
  /** UTC day (utcDay) of the count. */
  readonly day: number;
  readonly sent: number;
  /** The source's first day (utcDay). */
  readonly firstDay: number;
}

/**
 * The statements both queues run, one text per dialect (only the placeholders differ: `?` on SQLite, `$n` on
 * PostgreSQL; each parameter is used once, in order).
 */
export function warmupSql(dialect: 'sqlite' | 'pg'): {
  readonly firstDay: string; readonly setFirstDay: string; readonly sent: string; readonly setSent: string; readonly forget: string; readonly counts: string;
} {
  let n = 0;
  const p = (): string => (dialect === 'pg' ? `$${++n}` : '?');
  const sql = (f: () => string): string => {
    n = 0;
    return f();
  };
  return {
    firstDay: sql(() => `SELECT first_day FROM source_warmup WHERE source = ${p()}`),
    setFirstDay: sql(() => `INSERT INTO source_warmup (source, first_day) VALUES (${p()}, ${p()}) ON CONFLICT (source) DO NOTHING`),
    sent: sql(() => `SELECT sent FROM source_daily WHERE source = ${p()} AND scope = ${p()} AND day = ${p()}`),
    setSent: sql(() => `INSERT INTO source_daily (source, scope, day, sent) VALUES (${p()}, ${p()}, ${p()}, ${p()})
      ON CONFLICT (source, scope, day) DO UPDATE SET sent = excluded.sent`),
    // Counts of days before yesterday are history nobody reads.
    forget: sql(() => `DELETE FROM source_daily WHERE source = ${p()} AND scope = ${p()} AND day < ${p()}`),
    counts: sql(() => `SELECT d.source, d.scope, d.day, d.sent, w.first_day FROM source_daily d JOIN source_warmup w ON w.source = d.source
      WHERE d.day = ${p()} ORDER BY d.source, d.scope`),
  };
}

/** A row of `counts`, as both drivers return it. */
export interface RawWarmupCount { source: string; scope: string; day: number; sent: number; first_day: number }

export const toWarmupCount = (r: RawWarmupCount): WarmupCount => ({ source: r.source, scope: r.scope, day: Number(r.day), sent: Number(r.sent), firstDay: Number(r.first_day) });

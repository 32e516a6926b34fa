/**
 * bench/fair-claim — what the fair claim (queue/fair-claim) costs on a large
 * queue: 1,000,000 due recipients of tenant "big" (100,000 messages × 10) and
 * 10 of tenant "small" queued after them, all at one destination, plus 1,000
 * other destinations with one due recipient each. Rows are written with SQL
 * (generate_series / a recursive CTE), not through enqueue, to keep the set-up
 * short. Prints the median time of claimDue (limit 2,000, a fair share of 20
 * per destination, the lease given back after each run) and where small's
 * first message came in the claim, on SQLite and on PostgreSQL (when
 * 127.0.0.1:5432 answers). Asserts nothing.
 *
 * Run: npm run build && node dist/bench/fair-claim.js [messages=100000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openSqliteQueue } from '../src/queue/sqlite/store.js';
import { openPgQueue } from '../src/queue/pg/store.js';
import type { Queue } from '../src/queue/store.js';
import { fairClaimSql } from '../src/queue/fair-claim.js';
import { createTestDatabase } from '../test/support/postgres.js';
import { median } from './table.js';

const MESSAGES = Number(process.argv[2] ?? 100_000);
const NOW = 1_700_000_000_000;
const line = (what: string, value: string): void => console.log(`${what.padEnd(56)} ${value}`);

/** The rows, as SQL statements: `series(n, x)` is the dialect's 1..n as table x with column i. */
function fill(series: (n: number, x: string) => string): string[] {
  const facts = (t: string): string => `'{"tenant":"${t}"}'`;
  const messages = (prefix: string, n: number, at: number, json: string): string => `INSERT INTO messages (id, sender, params, received_at, size, trace, held, event_facts)
      SELECT '${prefix}' || s.i, 'a@b.test', '{}', ${at}, 100, '{}', 0, ${json} FROM ${series(n, 's')}`;
  return [
    messages('big', MESSAGES, NOW, facts('big')),
    `INSERT INTO recipients (message_id, address, domain, destination, tenant, state, attempts, next_attempt_at, updated_at)
      SELECT 'big' || ((s.i - 1) / 10 + 1), 'u' || s.i || '@slow.test', 'slow.test', 'slow.test', 'big', 'queued', 0, ${NOW}, ${NOW}
      FROM ${series(MESSAGES * 10, 's')}`,
    messages('small', 10, NOW + 1, facts('small')),
    `INSERT INTO recipients (message_id, address, domain, destination, tenant, state, attempts, next_attempt_at, updated_at)
      SELECT 'small' || s.i, 's' || s.i || '@slow.test', 'slow.test', 'slow.test', 'small', 'queued', 0, ${NOW + 1}, ${NOW}
      FROM ${series(10, 's')}`,
    messages('other', 1000, NOW, "'{}'"),
    `INSERT INTO recipients (message_id, address, domain, destination, tenant, state, attempts, next_attempt_at, updated_at)
      SELECT 'other' || s.i, 'x@d' || s.i || '.test', 'd' || s.i || '.test', 'd' || s.i || '.test', '', 'queued', 0, ${NOW}, ${NOW}
      FROM ${series(1000, 's')}`,
  ];
}

/** The claim's selection before fair tenants (due order across the queue), without its lease: the reference. */
const BEFORE = (ph: { now: string; limit: string }): string => `SELECT r.id FROM recipients r JOIN messages m ON m.id = r.message_id
  LEFT JOIN destinations d ON d.key = r.destination
  WHERE r.state IN ('queued','deferred') AND r.next_attempt_at <= ${ph.now} AND m.held = 0
    AND (d.key IS NULL OR (d.health <> 'suspended' AND NOT (d.health = 'backoff' AND d.backoff_until > ${ph.now})))
  ORDER BY r.next_attempt_at, r.id LIMIT ${ph.limit}`;

async function timeSelects(name: string, run: (sql: string) => Promise<unknown>, dialect: 'sqlite' | 'pg'): Promise<void> {
  const ph = dialect === 'pg'
    ? { now: `${NOW + 10}`, limit: '2000', perPair: '2000', perDestination: '20', excluded: 'false' }
    : { now: `${NOW + 10}`, limit: '2000', perPair: '2000', perDestination: '20', excluded: '0' };
  for (const [what, sql] of [['selection before (due order, LIMIT 2000)', BEFORE(ph)], ['fair selection (share 20)', fairClaimSql(dialect, ph)]] as const) {
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t = performance.now();
      await run(sql);
      times.push(performance.now() - t);
    }
    line(`${name}: ${what}, median of 7`, `${(median(times) ?? NaN).toFixed(1)} ms`);
  }
}

async function measure(name: string, q: Queue): Promise<void> {
  const times: number[] = [];
  let smallAt = -1;
  let claimed = 0;
  for (let run = 0; run < 7; run++) {
    const t = performance.now();
    const rows = await q.recipients.claimDue({ now: NOW + 10, limit: 2000, owner: 'bench', leaseUntil: NOW + 60_000, perDestination: 20 });
    times.push(performance.now() - t);
    claimed = rows.length;
    smallAt = rows.filter((r) => r.destination === 'slow.test').findIndex((r) => r.messageId.startsWith('small'));
    await q.recipients.unclaim(rows.map((r) => r.id), 'bench', NOW);
  }
  line(`${name}: claimDue, ${MESSAGES * 10 + 1010} due (median of 7)`, `${(median(times) ?? NaN).toFixed(1)} ms, ${claimed} claimed`);
  line(`${name}: small's first among slow.test's claimed rows`, `#${smallAt + 1}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-bench-fair-'));
  try {
    await (await openSqliteQueue({ dataDir: dir })).close();
    const db = new Database(join(dir, 'queue', 'queue.db'));
    const t = performance.now();
    db.transaction(() => {
      for (const sql of fill((n, x) => `(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${n}) SELECT i FROM c) AS ${x}`)) db.exec(sql);
    })();
    await timeSelects('SQLite', async (sql) => db.prepare(sql).all(), 'sqlite');
    db.close();
    line('SQLite: rows written', `${((performance.now() - t) / 1000).toFixed(1)} s`);
    const q = await openSqliteQueue({ dataDir: dir });
    await measure('SQLite', q);
    await q.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  let tdb: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  try {
    tdb = await createTestDatabase();
  } catch {
    line('PostgreSQL', 'not reachable: skipped');
    return;
  }
  try {
    await (await openPgQueue({ url: tdb.url, poolSize: 1 })).close();
    const c = new pg.Client({ connectionString: tdb.url });
    await c.connect();
    const t = performance.now();
    for (const sql of fill((n, x) => `generate_series(1, ${n}) AS ${x}(i)`)) await c.query(sql);
    await c.query('ANALYZE');
    await timeSelects('PostgreSQL', (sql) => c.query(sql), 'pg');
    if (process.env.BENCH_EXPLAIN) {
      const sql = fairClaimSql('pg', { now: '$1::bigint', perPair: '$3::int', perDestination: '$4::int', limit: '$3::int', excluded: 'p.destination = ANY($2::text[])' });
      for (const r of (await c.query(`EXPLAIN ANALYZE ${sql}`, [NOW + 10, [], 2000, 20])).rows as { 'QUERY PLAN': string }[]) console.log(r['QUERY PLAN']);
    }
    await c.end();
    line('PostgreSQL: rows written', `${((performance.now() - t) / 1000).toFixed(1)} s`);
    const q = await openPgQueue({ url: tdb.url, poolSize: 2 });
    await measure('PostgreSQL', q);
    await q.close();
  } finally {
    await tdb.drop();
  }
}

await main();

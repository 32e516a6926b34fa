/**
 * bench/queue-cost — what one relayed message costs the queue, counted rather
 * than timed, so a loaded machine moves the figures little: for the SQLite
 * queue and the PostgreSQL queue on one node, in the same run, alternating
 * which goes first, N × 1 KiB relayed (smtp-source -s 20 → Halcyon →
 * smtp-sink) after a warm-up of W messages, and per message:
 *
 * - PostgreSQL statements sent, by kind (BEGIN and COMMIT included), and
 *   round trips (the statements less those pipelined behind an unanswered one);
 * - requests posted to the SQLite queue thread, by op (each a round trip);
 * - WAL bytes of the run's database (pg_waldump over the window, only the
 *   records of that database's relations and the commit records of their
 *   transactions; needs root and the server's pg_wal on this machine), and
 *   its durable commits (those transactions' COMMIT records: each one a
 *   commit the server had to flush; read-only statements write none);
 * - the server's WAL writes and fsyncs (pg_stat_wal: the whole server, so
 *   other databases' work on a shared machine counts too);
 * - CPU seconds of the Halcyon process per 1,000 messages, and msgs/s end to
 *   end (wall clock: the machine's load moves it; PG/SQLite of the same run
 *   moves less).
 *
 * Counters come from bench/cost-counters, preloaded into Halcyon's node.
 * Prints each run and the medians with their range; asserts nothing.
 *
 * Run: node dist/bench/queue-cost.js [messages=2000] [runs=3] [warmup=1000] [setups=sqlite,postgres]
 * (BENCH_SIZE=102400 for 100 KiB messages)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startHalcyon } from './halcyon.js';
import { installExitHandlers, pollUntil, sleep, stopAll } from './procs.js';
import { runSource, startSink, toolsPresent } from './sink.js';
import { median } from './table.js';
import type { CostSnapshot } from './cost-counters.js';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.js';

const MESSAGES = Number(process.argv[2] ?? 2000);
const RUNS = Number(process.argv[3] ?? 3);
const WARMUP = Number(process.argv[4] ?? 1000);
const SETUPS = (process.argv[5] ?? 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
const BUDGET_MS = 150_000;
/** BENCH_SIZE: the message size in bytes (default 1024). */
const SIZE = Number(process.env.BENCH_SIZE ?? 1024);
const PG_WAL = process.env.PG_WAL_DIR ?? '/var/lib/postgresql/15/main/pg_wal';
const WALDUMP = process.env.PG_WALDUMP ?? '/usr/lib/postgresql/15/bin/pg_waldump';
const COUNTERS = fileURLToPath(new URL('./cost-counters.js', import.meta.url));

interface Figure {
  readonly setup: string;
  readonly msgsPerS: number;
  readonly cpuPerK: number;
  readonly statements: Record<string, number>;
  /** Round trips to PostgreSQL per message: statements less the pipelined ones. */
  readonly roundTrips: number;
  readonly posts: Record<string, number>;
  /** postMessage calls to the queue thread per message (each carries one request or a turn's). */
  readonly postMessages: number;
  /** Async resources of the main thread per message, by type (HALCYON_COST_ASYNC=1). */
  readonly async: Record<string, number>;
  readonly walBytes: number | undefined;
  /** Our transactions' COMMIT records in the WAL per message: commits that had to be made durable. */
  readonly commits: number | undefined;
  /** pg_stat_wal's wal_sync per message (the whole server). */
  readonly walSyncs: number | undefined;
  /** CPU seconds of the database's server processes per 1,000 messages (those alive at the end; a new one counted from 0). */
  readonly serverCpuPerK: number | undefined;
}

async function snapshot(pid: number, file: string): Promise<CostSnapshot> {
  const before = existsSync(file) ? statSync(file).mtimeMs : 0;
  process.kill(pid, 'SIGUSR2');
  await pollUntil(() => existsSync(file) && statSync(file).mtimeMs !== before, Date.now() + 5_000, 5);
  await sleep(20);
  return JSON.parse(readFileSync(file, 'utf8')) as CostSnapshot;
}

const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.keys(b).map((k) => [k, b[k]! - (a[k] ?? 0)]).filter(([, v]) => (v as number) > 0));

/** CPU seconds (user + system) of each server process serving this database, but the asking one. */
function backendCpu(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      out.set(pid, (f[11]! + f[12]!) / 100);
    } catch { /* ended meanwhile */ }
  }
  return out;
}

async function lsn(url: string): Promise<{ lsn: string; oid: number; syncs: number; cpu: Map<number, number> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const pids = (await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')).rows.map((r) => r.pid);
    const { rows } = await c.query<{ lsn: string; oid: number; syncs: number }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn,
      (SELECT oid FROM pg_database WHERE datname = current_database())::int AS oid, (SELECT wal_sync FROM pg_stat_wal)::bigint AS syncs`);
    // One small record after that point (not transactional, no table), so a reader of the WAL sees it was passed;
    // waited for until flushed: pg_waldump started at a point with nothing flushed after it gives up at once.
    await c.query("SELECT pg_logical_emit_message(false, 'halcyon-bench', '')");
    const flushed = async (): Promise<boolean> => (await c.query<{ ok: boolean }>('SELECT pg_current_wal_flush_lsn() > $1::pg_lsn AS ok', [rows[0]!.lsn])).rows[0]!.ok;
    for (let i = 0; i < 100 && !(await flushed()); i++) await sleep(20);
    return { ...rows[0]!, cpu: backendCpu(pids) };
  } finally {
    await c.end();
  }
}

/**
 * WAL bytes of one database's relations from an LSN on, and of its transactions' commit records: pg_waldump
 * follows the WAL as it is written (the server recycles segments within seconds on a busy machine, so it
 * cannot be read after the run). `stop(lsn)` ends it once it has read up to that LSN.
 */
function followWal(from: string, oid: number): { stop: (to: string) => Promise<{ bytes: number; commits: number } | undefined> } | undefined {
  if (!existsSync(WALDUMP) || !existsSync(PG_WAL)) return undefined;
  const child = spawn(WALDUMP, ['-f', '-p', PG_WAL, '-s', from], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ours = new Set<string>();
  const commits = new Map<string, number>();
  const committed = new Set<string>();
  let bytes = 0;
  let last = 0n;
  let stopAt: bigint | undefined;
  let tail = '';
  const rel = new RegExp(`rel \\d+/${oid}/`);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (tail + d).split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) {
      const m = /len \(rec\/tot\):\s*\d+\/\s*(\d+), tx:\s*(\d+), lsn: ([0-9A-F]+)\/([0-9A-F]+)/.exec(line);
      if (!m) continue;
      const at = (BigInt(`0x${m[3]}`) << 32n) + BigInt(`0x${m[4]}`);
      last = at;
      if (stopAt !== undefined && at >= stopAt) continue;
      const tot = Number(m[1]);
      if (rel.test(line)) {
        bytes += tot;
        ours.add(m[2]!);
      } else if (/rmgr: Transaction/.test(line)) {
        commits.set(m[2]!, (commits.get(m[2]!) ?? 0) + tot);
        if (/desc: COMMIT/.test(line)) committed.add(m[2]!);
      }
    }
  });
  const lsnOf = (s: string): bigint => {
    const [hi, lo] = s.split('/');
    return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
  };
  return {
    async stop(to: string): Promise<{ bytes: number; commits: number } | undefined> {
      stopAt = lsnOf(to);
      const reached = await pollUntil(() => last >= stopAt!, Date.now() + 10_000, 20);
      child.kill('SIGTERM');
      if (!reached) return undefined;
      for (const [tx, n] of commits) if (ours.has(tx)) bytes += n;
      return { bytes, commits: [...committed].filter((tx) => ours.has(tx)).length };
    },
  };
}

async function once(setup: 'sqlite' | 'postgres', run: number): Promise<Figure> {
  const sink = await startSink();
  let db: TestDatabase | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-cost-'));
  const file = join(dir, 'cost.json');
  process.env.HALCYON_COST_FILE = file;
  try {
    if (setup === 'postgres') db = await createTestDatabase();
    const h = await startHalcyon({ routeTo: sink.port, ...(db ? { postgres: { url: db.url, node: `cost-${run}` } } : {}) });
    try {
      const load = { sessions: 20, size: SIZE, recipients: 1 };
      if (WARMUP > 0) {
        await runSource(h.port, { ...load, messages: WARMUP }, BUDGET_MS);
        await pollUntil(() => sink.messages() >= WARMUP, Date.now() + BUDGET_MS, 10);
        await sleep(300);
      }
      const base = sink.messages();
      const s0 = await snapshot(h.pid, file);
      const w0 = db ? await lsn(db.url) : undefined;
      const wal = w0 ? followWal(w0.lsn, w0.oid) : undefined;
      const t0 = Date.now();
      await runSource(h.port, { ...load, messages: MESSAGES }, BUDGET_MS);
      const done = await pollUntil(() => sink.messages() >= base + MESSAGES, t0 + BUDGET_MS, 10);
      const seconds = (Date.now() - t0) / 1000;
      const s1 = await snapshot(h.pid, file);
      const w1 = db ? await lsn(db.url) : undefined;
      const got = sink.messages() - base;
      if (!done) console.error(`  ${setup}: sink got ${got}/${MESSAGES}`);
      const f: Figure = {
        setup, msgsPerS: got / seconds, cpuPerK: ((s1.cpuUs - s0.cpuUs) / 1e6) * 1000 / got,
        statements: Object.fromEntries(Object.entries(diff(s0.pg, s1.pg)).map(([k, v]) => [k, v / got])),
        roundTrips: (Object.values(s1.pg).reduce((a, b) => a + b, 0) - Object.values(s0.pg).reduce((a, b) => a + b, 0)
          - ((s1.pipelined ?? 0) - (s0.pipelined ?? 0))) / got,
        posts: Object.fromEntries(Object.entries(diff(s0.posts, s1.posts)).map(([k, v]) => [k, v / got])),
        postMessages: ((s1.messages ?? 0) - (s0.messages ?? 0)) / got,
        async: Object.fromEntries(Object.entries(diff(s0.async ?? {}, s1.async ?? {})).map(([k, v]) => [k, v / got])),
        ...await (async () => {
          const w = w1 && wal ? await wal.stop(w1.lsn) : undefined;
          return { walBytes: w1 && wal ? (w?.bytes ?? NaN) / got : undefined, commits: w1 && wal ? (w?.commits ?? NaN) / got : undefined };
        })(),
        walSyncs: w0 && w1 ? (w1.syncs - w0.syncs) / got : undefined,
        serverCpuPerK: w0 && w1 ? ([...w1.cpu].reduce((n, [pid, t]) => n + t - (w0.cpu.get(pid) ?? 0), 0) * 1000) / got : undefined,
      };
      const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
      console.log(`run ${run + 1} ${setup.padEnd(8)} ${f.msgsPerS.toFixed(0)} msgs/s, CPU ${f.cpuPerK.toFixed(2)} s/1000, ` +
        `pg statements ${sum(f.statements).toFixed(2)}/msg in ${f.roundTrips.toFixed(2)} round trips, queue-thread requests ${sum(f.posts).toFixed(2)}/msg in ${f.postMessages.toFixed(2)} postMessages` +
        `${f.walBytes !== undefined ? `, WAL ${f.walBytes.toFixed(0)} B/msg, ${f.commits?.toFixed(2)} durable commits/msg` : ''}` +
        `${f.walSyncs !== undefined ? `, server WAL fsyncs ${f.walSyncs.toFixed(2)}/msg` : ''}` +
        `${f.serverCpuPerK !== undefined ? `, PostgreSQL server CPU ${f.serverCpuPerK.toFixed(2)} s/1000` : ''}`);
      return f;
    } finally {
      await h.stop();
    }
  } finally {
    await sink.stop();
    await db?.drop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmtRange = (xs: number[], d = 2): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `${median(s)!.toFixed(d)} (${s[0]!.toFixed(d)}–${s.at(-1)!.toFixed(d)})`;
};

async function main(): Promise<void> {
  if (!toolsPresent() || userInfo().uid !== 0) {
    console.error('bench/queue-cost: needs root and Debian\'s postfix package (smtp-source, smtp-sink)');
    process.exitCode = 2;
    return;
  }
  installExitHandlers();
  process.env.BENCH_NODE_ARGS = `${process.env.BENCH_NODE_ARGS ?? ''} --import ${COUNTERS}`;
  const got = new Map<string, Figure[]>(SETUPS.map((s) => [s, []]));
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? SETUPS : [...SETUPS].reverse();
    for (const s of order) got.get(s)!.push(await once(s, run));
  }
  console.log(`\n${MESSAGES} × ${SIZE / 1024} KiB after ${WARMUP} warm-up, 20 sessions, ${RUNS} runs: median (range)`);
  for (const [setup, figs] of got) {
    const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
    console.log(`${setup}: ${fmtRange(figs.map((f) => f.msgsPerS), 0)} msgs/s; CPU ${fmtRange(figs.map((f) => f.cpuPerK))} s per 1,000; ` +
      `pg statements ${fmtRange(figs.map((f) => sum(f.statements)))}/msg in ${fmtRange(figs.map((f) => f.roundTrips))} round trips; queue-thread requests ${fmtRange(figs.map((f) => sum(f.posts)))}/msg in ${fmtRange(figs.map((f) => f.postMessages))} postMessages/msg` +
      (figs[0]?.walBytes !== undefined ? `; WAL ${fmtRange(figs.map((f) => f.walBytes ?? NaN), 0)} B/msg` : '') +
      (figs[0]?.commits !== undefined ? `; durable commits ${fmtRange(figs.map((f) => f.commits ?? NaN))}/msg` : '') +
      (figs[0]?.walSyncs !== undefined ? `; server WAL fsyncs (whole server) ${fmtRange(figs.map((f) => f.walSyncs ?? NaN))}/msg` : '') +
      (figs[0]?.serverCpuPerK !== undefined ? `; PostgreSQL server CPU ${fmtRange(figs.map((f) => f.serverCpuPerK ?? NaN))} s per 1,000` : ''));
    const kinds = new Set(figs.flatMap((f) => [...Object.keys(f.statements), ...Object.keys(f.posts), ...Object.keys(f.async).map((t) => `async ${t}`)]));
    for (const k of [...kinds].sort()) {
      const v = figs.map((f) => f.statements[k] ?? f.posts[k] ?? f.async[k.replace(/^async /, '')] ?? 0);
      if (median(v)! >= 0.005) console.log(`    ${k.padEnd(60)} ${fmtRange(v, 3)}`);
    }
  }
  const sq = got.get('sqlite');
  const pgf = got.get('postgres');
  if (sq?.length && pgf?.length) {
    const ratios = pgf.map((f, i) => f.msgsPerS / sq[i]!.msgsPerS);
    console.log(`PostgreSQL / SQLite msgs/s, per run (same run, adjacent): ${fmtRange(ratios)}`);
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench/queue-cost failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}

/**
 * bench/run — Halcyon side by side with Postfix (`npm run bench`).
 *
 * Both MTAs run on loopback with the same next hop (smtp-sink) and default
 * durability: Halcyon spawned from the compiled CLI with a fresh data_dir,
 * Postfix as a private instance (bench/postfix.ts). Scenarios, each with fresh
 * queues and bounded by BENCH_BUDGET_S seconds (default 150), printing what
 * was reached when the budget runs out:
 *   1+2. smtp-source → MTA → smtp-sink: msgs/s accepted (smtp-source exits
 *        after its last 250) and end to end (smtp-sink counted them all), for
 *        1 KiB, 100 KiB and 10-recipient loads; 3. the ceiling, smtp-source
 *        straight into smtp-sink; and the CPU seconds (user + system) each
 *        MTA's own processes spent per 1,000 of those messages;
 *   4. end-of-data → reply latency p50/p99 at 1 and 50 sessions;
 *   5. RSS per idle inbound connection;
 *   6. transactions per 10-recipient message at a remote that answers 552 to
 *      the first recipient, or limits recipients to 3.
 * Throughput and latency are run BENCH_RUNS times (default 3), Halcyon and
 * Postfix alternating which goes first, and the table prints each figure's
 * median with the range of the runs; memory and transaction counts, which
 * noise does not move, run once. Prints the machine, the versions and
 * Postfix's non-default settings, then one Markdown table; asserts nothing;
 * installs nothing (needs Debian's postfix package and root). BENCH_SCALE
 * (default 1) scales the message counts, for a quick look.
 *
 *   7. DKIM signing at acceptance: 1 KiB accepted msgs/s unsigned, RSA-2048
 *      and Ed25519 (bench/dkim.ts; Halcyon only).
 * BENCH_ONLY=dkim runs only 7 (no Postfix needed beyond smtp-source/smtp-sink).
 *   8. Relay end to end on a shared queue: SQLite one node, PostgreSQL one
 *      node, PostgreSQL three nodes (bench/cluster.ts; skipped when
 *      PostgreSQL does not answer). BENCH_ONLY=cluster runs only 8.
 *   9. Relay end to end with no event sink and with a webhook sink receiving
 *      every event (bench/events.ts; Halcyon only). BENCH_ONLY=events runs only 9.
 *  10. Core scaling: the 1 KiB relay load with the MTA pinned to 1 core and
 *      then 2 (taskset), Halcyon and Postfix alike, and each one's speed-up
 *      (bench/cores.ts). BENCH_ONLY=cores runs only 10.
 * BENCH_ONLY=throughput runs only 1–3 (and the CPU rows), for single rows while
 * working on speed: BENCH_LOADS=1k,100k,10rcpt picks the loads (default all),
 * BENCH_MTAS=halcyon,postfix,ceiling the contestants (default all), and
 * BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") is passed to
 * Halcyon's node.
 *
 * Run: npm run bench   (or: node <outDir>/bench/run.js)
 */
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem, userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchWorkers, startHalcyon } from './halcyon.js';
import { holdIdle } from './idle-conns.js';
import { measureLatency, quantile } from './latency.js';
import { postfixVersion, startPostfix, POSTFIX } from './postfix.js';
import { installExitHandlers, pollUntil, sh, sleep, stopAll } from './procs.js';
import { runSource, startSink, toolsPresent, type SourceLoad } from './sink.js';
import { dkimRows } from './dkim.js';
import { clusterRows } from './cluster.js';
import { eventRows } from './events.js';
import { coreRows, pin } from './cores.js';
import { renderTable, type Row, type Runs } from './table.js';
import { transactionsHalcyon, transactionsPostfix } from './transactions.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const BUDGET_MS = Number(process.env.BENCH_BUDGET_S ?? 150) * 1000;
const RUNS = Math.max(1, Math.round(Number(process.env.BENCH_RUNS ?? 3)));
const n = (count: number): number => Math.max(10, Math.round(count * SCALE));

interface Load extends SourceLoad { readonly label: string }
const LOADS: readonly Load[] = [
  { label: `${n(20_000).toLocaleString('en-US')} × 1 KiB`, sessions: 20, messages: n(20_000), size: 1024, recipients: 1 },
  { label: `${n(5_000).toLocaleString('en-US')} × 100 KiB`, sessions: 20, messages: n(5_000), size: 102_400, recipients: 1 },
  { label: `${n(5_000).toLocaleString('en-US')} × 1 KiB × 10 rcpt`, sessions: 20, messages: n(5_000), size: 1024, recipients: 10 },
];
const LOAD_KEYS = ['1k', '100k', '10rcpt'] as const;
/** BENCH_LOADS / BENCH_MTAS: a comma list, or everything when unset. */
const picked = <T extends string>(env: string | undefined, all: readonly T[]): readonly T[] =>
  env ? all.filter((k) => env.split(',').map((x) => x.trim()).includes(k)) : all;
const LOADS_RUN: readonly Load[] = LOADS.filter((_, i) => picked(process.env.BENCH_LOADS, LOAD_KEYS).includes(LOAD_KEYS[i]!));
const MTAS_RUN = picked(process.env.BENCH_MTAS, ['ceiling', 'halcyon', 'postfix'] as const);
const LATENCY_MESSAGES = n(2_000);
const IDLE_HALCYON = 10_000;
const IDLE_POSTFIX = 100;

type Mta = 'halcyon' | 'postfix' | 'ceiling';

interface Throughput {
  /** msgs/s from smtp-source start to its exit; undefined when it did not finish. */
  readonly accepted: number | undefined;
  /** msgs/s until smtp-sink counted them all (or what was reached in the budget). */
  readonly endToEnd: number;
  readonly complete: boolean;
  /** User + system CPU seconds of the MTA's processes per 1,000 messages, from the load's start to the sink's last message. */
  readonly cpuPerK: number | undefined;
  readonly note: string;
}

/** `postconf -n` of the first Postfix relay instance, printed above the table. */
let postfixSettings: string[] = [];

/** One MTA (or none, for the ceiling) between smtp-source and a fresh smtp-sink. */
async function throughput(mta: Mta, load: Load, cpuList?: string): Promise<Throughput> {
  const sink = await startSink();
  try {
    let port = sink.port;
    let stopMta = async (): Promise<void> => undefined;
    let cpu = (): number | undefined => undefined;
    if (mta === 'halcyon') {
      const h = await startHalcyon({ routeTo: sink.port });
      port = h.port; stopMta = h.stop; cpu = h.cpuSeconds;
      if (cpuList !== undefined) pin(h.pid, cpuList);
    } else if (mta === 'postfix') {
      const p = await startPostfix({ relayTo: sink.port });
      port = p.port; stopMta = p.stop; cpu = p.cpuSeconds;
      if (cpuList !== undefined) pin(p.masterPid(), cpuList);
      if (postfixSettings.length === 0) postfixSettings = p.nonDefaults();
    }
    try {
      const cpu0 = cpu();
      const t0 = Date.now();
      const src = await runSource(port, load, BUDGET_MS);
      const done = await pollUntil(() => sink.messages() >= load.messages, t0 + BUDGET_MS, 10);
      const e2eS = (Date.now() - t0) / 1000;
      const got = sink.messages();
      const cpu1 = cpu();
      const notes: string[] = [];
      if (!src.finished) notes.push(`smtp-source ${src.code === null ? `stopped at ${BUDGET_MS / 1000} s` : `exited ${src.code}: ${src.stderr.trim().split('\n').pop()}`}`);
      if (!done) notes.push(`sink got ${got}/${load.messages} in ${e2eS.toFixed(0)} s`);
      const r: Throughput = {
        accepted: src.finished ? load.messages / src.seconds : undefined,
        endToEnd: got / e2eS,
        complete: done,
        cpuPerK: cpu0 !== undefined && cpu1 !== undefined && got > 0 ? ((cpu1 - cpu0) * 1000) / got : undefined,
        note: notes.join('; '),
      };
      const cpuNote = r.cpuPerK === undefined ? '' : `, CPU ${r.cpuPerK.toFixed(2)} s per 1,000`;
      console.error(`  ${mta.padEnd(8)}${cpuList !== undefined ? ` [cpus ${cpuList}]` : ''} ${load.label}: accepted ${r.accepted?.toFixed(0) ?? '—'} msgs/s (${src.seconds.toFixed(1)} s), end to end ${r.endToEnd.toFixed(0)} msgs/s (${e2eS.toFixed(1)} s)${cpuNote}${r.note ? ` [${r.note}]` : ''}`);
      return r;
    } finally {
      await stopMta();
    }
  } finally {
    await sink.stop();
  }
}

async function latency(mta: 'halcyon' | 'postfix', sessions: number): Promise<{ p50: number; p99: number; note: string }> {
  const sink = await startSink();
  try {
    const m = mta === 'halcyon' ? await startHalcyon({ routeTo: sink.port }) : await startPostfix({ relayTo: sink.port });
    try {
      const r = await measureLatency(m.port, sessions, LATENCY_MESSAGES, BUDGET_MS);
      const note = r.ms.length < LATENCY_MESSAGES || r.failed ? `${r.ms.length} timed, ${r.failed} failed` : '';
      console.error(`  ${mta.padEnd(8)} latency @${sessions}: p50 ${quantile(r.ms, 0.5).toFixed(2)} ms, p99 ${quantile(r.ms, 0.99).toFixed(2)} ms (${r.ms.length} msgs in ${r.seconds.toFixed(1)} s)`);
      return { p50: quantile(r.ms, 0.5), p99: quantile(r.ms, 0.99), note };
    } finally {
      await m.stop();
    }
  } finally {
    await sink.stop();
  }
}

async function idleHalcyon(): Promise<{ kbPerConn: number; note: string }> {
  const sink = await startSink();
  try {
    const h = await startHalcyon({ routeTo: sink.port, maxConnections: IDLE_HALCYON + 1_000 });
    try {
      await sleep(1_000);
      const before = h.rssKb();
      const hold = await holdIdle(h.port, IDLE_HALCYON, Math.min(BUDGET_MS, 120_000));
      try {
        await sleep(2_000);
        const after = h.rssKb();
        const per = hold.open ? (after - before) / hold.open : Number.NaN;
        console.error(`  halcyon  idle: ${hold.open} open (${hold.failed} failed), RSS ${before} → ${after} KiB`);
        return { kbPerConn: per, note: `${hold.open.toLocaleString('en-US')} idle conns${hold.failed ? ` (${hold.failed} failed)` : ''}; RSS ${(before / 1024).toFixed(0)} → ${(after / 1024).toFixed(0)} MiB` };
      } finally {
        await hold.release();
      }
    } finally {
      await h.stop();
    }
  } finally {
    await sink.stop();
  }
}

async function idlePostfix(): Promise<{ kbPerConn: number; note: string }> {
  const sink = await startSink();
  try {
    const p = await startPostfix({ relayTo: sink.port, maxproc: IDLE_POSTFIX + 10 });
    try {
      await sleep(1_000);
      const before = p.rssKb();
      const hold = await holdIdle(p.port, IDLE_POSTFIX, 60_000);
      try {
        await sleep(2_000);
        const after = p.rssKb();
        const per = hold.open ? (after.total - before.total) / hold.open : Number.NaN;
        console.error(`  postfix  idle: ${hold.open} open (${hold.failed} failed), RSS sum ${before.total} KiB/${before.processes} procs → ${after.total} KiB/${after.processes} procs`);
        const pss = hold.open ? (after.pss - before.pss) / hold.open : Number.NaN;
        return { kbPerConn: per, note: `${hold.open} idle conns, one smtpd each; RSS summed over ${after.processes} processes (shared pages counted in each; PSS ${pss.toFixed(0)} KiB/conn)` };
      } finally {
        await hold.release();
      }
    } finally {
      await p.stop();
    }
  } finally {
    await sink.stop();
  }
}

/** The core-scaling rows (bench/cores): the 1 KiB relay load, each MTA pinned to 1 core and then 2. */
function cores(): Promise<Row[]> {
  const load = LOADS[0]!;
  const workers = benchWorkers();
  return coreRows(workers === undefined ? load.label : `${load.label}, Halcyon [server] workers = ${workers}`, RUNS, async (mta, cpuList) => {
    const t = await throughput(mta, load, cpuList);
    return t.complete ? t.endToEnd : undefined;
  });
}

function machine(): string {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const rev = sh('git', ['-C', fileURLToPath(new URL('.', import.meta.url)), 'rev-parse', '--short', 'HEAD']).trim() || 'unknown';
  return `Machine: ${cpus().length} CPUs, ${model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}; Node ${process.version}; Halcyon ${rev}; Postfix ${postfixVersion()}`;
}

async function main(): Promise<void> {
  if (!toolsPresent() || userInfo().uid !== 0) {
    console.error(`bench: needs root and Debian's postfix package (${POSTFIX}, smtp-source, smtp-sink): apt-get install postfix`);
    process.exitCode = 2;
    return;
  }
  installExitHandlers();
  const started = Date.now();
  const rows: Row[] = [];
  if (process.env.BENCH_ONLY === 'dkim' || process.env.BENCH_ONLY === 'cluster' || process.env.BENCH_ONLY === 'events' || process.env.BENCH_ONLY === 'cores') {
    const only = process.env.BENCH_ONLY;
    rows.push(...await (only === 'dkim' ? dkimRows(n(20_000), RUNS, BUDGET_MS) : only === 'cluster' ? clusterRows(n(10_000), RUNS, BUDGET_MS)
      : only === 'cores' ? cores() : eventRows(n(10_000), RUNS, BUDGET_MS)));
    console.log(machine());
    console.log(`Scale ${SCALE}, ${RUNS} run(s) per figure (median, then the runs' range), budget ${BUDGET_MS / 1000} s per run; took ${((Date.now() - started) / 1000).toFixed(0)} s.`);
    console.log('');
    console.log(renderTable(rows));
    return;
  }
  // Run r goes ceiling, Halcyon, Postfix when r is even and ceiling, Postfix, Halcyon when odd, so
  // neither MTA always runs first (on a warm or a cold machine).
  const order = (run: number): Mta[] => (run % 2 === 0 ? ['ceiling', 'halcyon', 'postfix'] as Mta[] : ['ceiling', 'postfix', 'halcyon'] as Mta[])
    .filter((m) => MTAS_RUN.includes(m));
  const only = process.env.BENCH_ONLY === 'throughput';
  const notesOf = (h: readonly Throughput[], p: readonly Throughput[]): string => [
    ...h.filter((t) => t.note).map((t) => `Halcyon: ${t.note}`),
    ...p.filter((t) => t.note).map((t) => `Postfix: ${t.note}`),
  ].join('; ');

  console.error(`throughput (smtp-source -s 20 → MTA → smtp-sink), ${RUNS} run(s) each`);
  const byLoad = new Map<string, Map<Mta, Throughput[]>>();
  for (const load of only ? LOADS_RUN : LOADS) {
    const runs = new Map<Mta, Throughput[]>([['ceiling', []], ['halcyon', []], ['postfix', []]]);
    for (let run = 0; run < RUNS; run++) {
      for (const mta of order(run)) runs.get(mta)!.push(await throughput(mta, load));
    }
    byLoad.set(load.label, runs);
  }
  for (const kind of ['accepted', 'end to end'] as const) {
    for (const load of only ? LOADS_RUN : LOADS) {
      const runs = byLoad.get(load.label)!;
      const pick = (mta: Mta): Runs => runs.get(mta)!.map((t) => (kind === 'accepted' ? t.accepted : t.endToEnd));
      rows.push({ what: `${kind === 'accepted' ? 'Inbound accepted' : 'Relay end to end'}, ${load.label}`, unit: 'msgs/s',
        halcyon: pick('halcyon'), postfix: pick('postfix'), ratio: 'hp', ceiling: pick('ceiling'),
        note: notesOf(runs.get('halcyon')!, runs.get('postfix')!) });
    }
  }
  if (!only) rows.push(...await dkimRows(n(20_000), RUNS, BUDGET_MS));
  if (!only) rows.push(...await clusterRows(n(10_000), RUNS, BUDGET_MS));
  if (!only) rows.push(...await eventRows(n(10_000), RUNS, BUDGET_MS));
  if (!only) rows.push(...await cores());
  for (const load of only ? LOADS_RUN : LOADS) {
    const runs = byLoad.get(load.label)!;
    rows.push({ what: `CPU per 1,000 msgs, ${load.label}`, unit: 's', ratio: 'ph',
      halcyon: runs.get('halcyon')!.map((t) => t.cpuPerK), postfix: runs.get('postfix')!.map((t) => t.cpuPerK),
      note: 'user + system, from the load\'s start to the sink\'s last message; Postfix: master and all its children' });
  }

  if (only) {
    console.log(machine());
    console.log(`Scale ${SCALE}, ${RUNS} run(s) per figure, budget ${BUDGET_MS / 1000} s per run; took ${((Date.now() - started) / 1000).toFixed(0)} s.`);
    console.log('');
    console.log(renderTable(rows));
    return;
  }
  console.error(`latency (end of data → reply), ${RUNS} run(s) each`);
  for (const sessions of [1, 50]) {
    const h: { p50: number; p99: number; note: string }[] = [];
    const p: { p50: number; p99: number; note: string }[] = [];
    for (let run = 0; run < RUNS; run++) {
      if (run % 2 === 0) { h.push(await latency('halcyon', sessions)); p.push(await latency('postfix', sessions)); }
      else { p.push(await latency('postfix', sessions)); h.push(await latency('halcyon', sessions)); }
    }
    const note = [...h.filter((x) => x.note).map((x) => `Halcyon: ${x.note}`), ...p.filter((x) => x.note).map((x) => `Postfix: ${x.note}`)].join('; ');
    const label = `${sessions} session${sessions > 1 ? 's' : ''}`;
    rows.push({ what: `Latency p50, ${label}`, unit: 'ms', halcyon: h.map((x) => x.p50), postfix: p.map((x) => x.p50), ratio: 'ph', note });
    rows.push({ what: `Latency p99, ${label}`, unit: 'ms', halcyon: h.map((x) => x.p99), postfix: p.map((x) => x.p99), ratio: 'ph', note });
  }

  console.error('memory (idle inbound connections)');
  const mh = await idleHalcyon();
  const mp = await idlePostfix();
  rows.push({ what: 'RSS per idle inbound connection', unit: 'KiB/conn', halcyon: [mh.kbPerConn], postfix: [mp.kbPerConn], ratio: 'ph',
    note: `Halcyon: ${mh.note}; Postfix: ${mp.note}` });

  console.error('transactions per 10-recipient message');
  for (const kind of ['552-first', 'limit-3'] as const) {
    const h = await transactionsHalcyon(kind, 30_000);
    const p = await transactionsPostfix(kind, 30_000);
    console.error(`  ${kind}: Halcyon ${h.transactions} (${h.fates}); Postfix ${p.transactions} (${p.fates})`);
    rows.push({ what: kind === '552-first' ? 'Transactions, remote 552s the 1st rcpt' : 'Transactions, remote limit 3 rcpts', unit: 'count',
      halcyon: [h.transactions], postfix: [p.transactions], ratio: 'none', note: `within 30 s. Halcyon: ${h.fates}. Postfix: ${p.fates}` });
  }

  console.log(machine());
  console.log(`Postfix's non-default settings (postconf -n of the relay instance; paths are per-run temporary directories): ${postfixSettings.join('; ')}`);
  console.log(`Scale ${SCALE}, ${RUNS} run(s) per throughput and latency figure (median, then the runs' range), budget ${BUDGET_MS / 1000} s per run; took ${((Date.now() - started) / 1000).toFixed(0)} s. Ratio of the medians: H/P = Halcyon/Postfix (higher favours Halcyon), P/H = Postfix/Halcyon (for latency, CPU and memory; higher favours Halcyon).`);
  console.log('');
  console.log(renderTable(rows));
}

try {
  await main();
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}

/**
 * bench/latency-run — the latency rows of bench/run alone, for work on them:
 * end of data → reply (bench/latency: each "." until its reply, timed with
 * process.hrtime), S sessions, N messages per run, Halcyon and Postfix in
 * alternating order, each run against a fresh MTA relaying to smtp-sink, as
 * in the full bench. Prints each run's p50/p90/p99/max and the medians with
 * their range. Asserts nothing; needs root and Debian's postfix package.
 *
 * Run: node dist/bench/latency-run.js [sessions=1] [messages=2000] [runs=3] [mtas=halcyon,postfix]
 */
import { userInfo } from 'node:os';
import { startHalcyon } from './halcyon.js';
import { measureLatency, quantile } from './latency.js';
import { startPostfix } from './postfix.js';
import { installExitHandlers, stopAll } from './procs.js';
import { startSink, toolsPresent } from './sink.js';
import { median } from './table.js';

const SESSIONS = Number(process.argv[2] ?? 1);
const MESSAGES = Number(process.argv[3] ?? 2000);
const RUNS = Number(process.argv[4] ?? 3);
const MTAS = (process.argv[5] ?? 'halcyon,postfix').split(',') as ('halcyon' | 'postfix')[];
const BUDGET_MS = 150_000;

interface Figure { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }

async function once(mta: 'halcyon' | 'postfix', run: number): Promise<Figure> {
  const sink = await startSink();
  try {
    const m = mta === 'halcyon' ? await startHalcyon({ routeTo: sink.port }) : await startPostfix({ relayTo: sink.port });
    try {
      const r = await measureLatency(m.port, SESSIONS, MESSAGES, BUDGET_MS);
      const f = { p50: quantile(r.ms, 0.5), p90: quantile(r.ms, 0.9), p99: quantile(r.ms, 0.99), max: r.ms.at(-1) ?? NaN };
      console.log(`run ${run + 1} ${mta.padEnd(8)} ${r.ms.length} timed, ${r.failed} failed: p50 ${f.p50.toFixed(2)} p90 ${f.p90.toFixed(2)} p99 ${f.p99.toFixed(2)} max ${f.max.toFixed(2)} ms`);
      return f;
    } finally {
      await m.stop();
    }
  } finally {
    await sink.stop();
  }
}

async function main(): Promise<void> {
  if (!toolsPresent() || userInfo().uid !== 0) {
    console.error('bench/latency-run: needs root and Debian\'s postfix package');
    process.exitCode = 2;
    return;
  }
  installExitHandlers();
  const got = new Map<string, Figure[]>(MTAS.map((m) => [m, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const m of run % 2 === 0 ? MTAS : [...MTAS].reverse()) got.get(m)!.push(await once(m, run));
  }
  const cell = (xs: number[]): string => {
    const s = [...xs].sort((a, b) => a - b);
    return `${median(s)!.toFixed(2)} (${s[0]!.toFixed(2)}–${s.at(-1)!.toFixed(2)})`;
  };
  console.log(`\nend of data → reply, ${SESSIONS} session(s), ${MESSAGES} messages per run, ${RUNS} runs: median (range), ms`);
  for (const [mta, figs] of got) {
    console.log(`${mta}: p50 ${cell(figs.map((f) => f.p50))}; p90 ${cell(figs.map((f) => f.p90))}; p99 ${cell(figs.map((f) => f.p99))}; max ${cell(figs.map((f) => f.max))}`);
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench/latency-run failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}

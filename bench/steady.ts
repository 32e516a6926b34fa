/**
 * bench/steady — what one relayed 1 KiB message costs Halcyon in its steady
 * state, after a warm-up, so that start-up and V8's compiling are not in it:
 * W messages of warm-up, then N measured (smtp-source -s 20 → Halcyon with
 * its SQLite queue → smtp-sink), and per message over the measured window:
 *
 * - CPU: seconds per 1,000 messages of the whole process and of each of its
 *   threads (/proc/PID/task/TID/stat: the main thread, the queue thread,
 *   V8's helpers; utime + stime);
 * - requests to the queue thread and the postMessage calls carrying them,
 *   and (HALCYON_COST_ASYNC=1) the promises, timers and other async
 *   resources the main thread made, by type — and with
 *   HALCYON_COST_ASYNC_SITES=1 by where (counters: bench/cost-counters);
 * - with HALCYON_COST_PROFILE=DIR, a V8 CPU profile of each thread over the
 *   window (bench/cpuprofile summarizes one); with BENCH_PERF=DIR,
 *   `perf record -g` of the process over the window (add
 *   BENCH_NODE_ARGS=--perf-basic-prof for JavaScript names).
 *
 * The counters and profilers slow the process: take CPU figures from runs
 * without them. Prints each run and the medians with their range; asserts
 * nothing. Needs root and Debian's postfix package (smtp-source, smtp-sink).
 *
 * Run: node dist/bench/steady.js [messages=5000] [runs=3] [warmup=5000]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHalcyon } from './halcyon.js';
import { installExitHandlers, pollUntil, sleep, stopAll } from './procs.js';
import { runSource, startSink, toolsPresent } from './sink.js';
import { median } from './table.js';
import type { CostSnapshot } from './cost-counters.js';

const MESSAGES = Number(process.argv[2] ?? 5000);
const RUNS = Number(process.argv[3] ?? 3);
const WARMUP = Number(process.argv[4] ?? 5000);
const BUDGET_MS = 300_000;
const PERF_DIR = process.env.BENCH_PERF;
const COUNTERS = fileURLToPath(new URL('./cost-counters.js', import.meta.url));
const TICK = 100; // USER_HZ: /proc's stat counts in 1/100 s

interface Figure {
  readonly msgsPerS: number;
  readonly cpuPerK: number;
  /** CPU seconds per 1,000 messages by thread name (the main thread is "halcyon", the queue thread "WorkerThread"…). */
  readonly threads: Record<string, number>;
  readonly requests: number;
  readonly postMessages: number;
  readonly async: Record<string, number>;
  readonly sites: Record<string, number>;
}

/** CPU seconds of each thread of a process, by its name (threads of one name summed). */
function threadCpu(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      out[name] = (out[name] ?? 0) + (f[11]! + f[12]!) / TICK;
    } catch { /* ended meanwhile */ }
  }
  return out;
}

async function snapshot(pid: number, file: string): Promise<CostSnapshot> {
  const before = existsSync(file) ? statSync(file).mtimeMs : 0;
  process.kill(pid, 'SIGUSR2');
  await pollUntil(() => existsSync(file) && statSync(file).mtimeMs !== before, Date.now() + 5_000, 5);
  await sleep(20);
  return JSON.parse(readFileSync(file, 'utf8')) as CostSnapshot;
}

const perMsg = (a: Record<string, number> | undefined, b: Record<string, number> | undefined, n: number): Record<string, number> =>
  Object.fromEntries(Object.keys(b ?? {}).map((k) => [k, ((b?.[k] ?? 0) - (a?.[k] ?? 0)) / n]).filter(([, v]) => (v as number) > 0));
const sum = (r: Record<string, number>): number => Object.values(r).reduce((x, y) => x + y, 0);

async function once(run: number): Promise<Figure> {
  const sink = await startSink();
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-steady-'));
  const file = join(dir, 'cost.json');
  process.env.HALCYON_COST_FILE = file;
  try {
    const h = await startHalcyon({ routeTo: sink.port });
    try {
      const load = { sessions: 20, size: 1024, recipients: 1 };
      if (WARMUP > 0) {
        await runSource(h.port, { ...load, messages: WARMUP }, BUDGET_MS);
        await pollUntil(() => sink.messages() >= WARMUP, Date.now() + BUDGET_MS, 10);
        await sleep(300);
      }
      const base = sink.messages();
      const s0 = await snapshot(h.pid, file);
      const t0cpu = threadCpu(h.pid);
      const perf = PERF_DIR ? spawn('perf', ['record', '-F', '499', '-g', '-p', String(h.pid), '-o', join(PERF_DIR, `perf-${run + 1}.data`)], { stdio: 'ignore' }) : undefined;
      const t0 = Date.now();
      await runSource(h.port, { ...load, messages: MESSAGES }, BUDGET_MS);
      const done = await pollUntil(() => sink.messages() >= base + MESSAGES, t0 + BUDGET_MS, 10);
      const seconds = (Date.now() - t0) / 1000;
      const t1cpu = threadCpu(h.pid);
      const s1 = await snapshot(h.pid, file);
      if (perf) {
        perf.kill('SIGINT');
        await new Promise((r) => perf.once('exit', r));
      }
      const got = sink.messages() - base;
      if (!done) console.error(`  sink got ${got}/${MESSAGES}`);
      const f: Figure = {
        msgsPerS: got / seconds,
        cpuPerK: ((s1.cpuUs - s0.cpuUs) / 1e6) * 1000 / got,
        threads: Object.fromEntries(Object.entries(perMsg(t0cpu, t1cpu, got)).map(([k, v]) => [k, v * 1000])),
        requests: sum(perMsg(s0.posts, s1.posts, got)),
        postMessages: (s1.messages - s0.messages) / got,
        async: perMsg(s0.async, s1.async, got),
        sites: perMsg(s0.asyncSites, s1.asyncSites, got),
      };
      console.log(`run ${run + 1}: ${f.msgsPerS.toFixed(0)} msgs/s, CPU ${f.cpuPerK.toFixed(3)} s per 1,000 (${Object.entries(f.threads).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}); ` +
        `${f.requests.toFixed(2)} queue-thread requests in ${f.postMessages.toFixed(2)} postMessages per message` +
        (Object.keys(f.async).length > 0 ? `; per message ${Object.entries(f.async).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}` : ''));
      return f;
    } finally {
      await h.stop();
    }
  } finally {
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const cell = (xs: number[], d = 3): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `${median(s)!.toFixed(d)} (${s[0]!.toFixed(d)}–${s.at(-1)!.toFixed(d)})`;
};

async function main(): Promise<void> {
  if (!toolsPresent() || userInfo().uid !== 0) {
    console.error('bench/steady: needs root and Debian\'s postfix package (smtp-source, smtp-sink)');
    process.exitCode = 2;
    return;
  }
  installExitHandlers();
  process.env.BENCH_NODE_ARGS = `${process.env.BENCH_NODE_ARGS ?? ''} --import ${COUNTERS}`;
  const figs: Figure[] = [];
  for (let run = 0; run < RUNS; run++) figs.push(await once(run));
  console.log(`\n${MESSAGES} × 1 KiB after ${WARMUP} of warm-up, 20 sessions, ${RUNS} runs: median (range)`);
  console.log(`msgs/s ${cell(figs.map((f) => f.msgsPerS), 0)}; CPU s per 1,000 ${cell(figs.map((f) => f.cpuPerK))}`);
  for (const t of [...new Set(figs.flatMap((f) => Object.keys(f.threads)))].sort()) console.log(`    thread ${t.padEnd(20)} ${cell(figs.map((f) => f.threads[t] ?? 0))} s per 1,000`);
  console.log(`queue-thread requests per message ${cell(figs.map((f) => f.requests), 2)} in ${cell(figs.map((f) => f.postMessages), 2)} postMessages`);
  for (const t of [...new Set(figs.flatMap((f) => Object.keys(f.async)))].sort()) console.log(`    async ${t.padEnd(20)} ${cell(figs.map((f) => f.async[t] ?? 0), 2)} per message`);
  const sites = Object.entries(figs.at(-1)?.sites ?? {}).sort((a, b) => b[1] - a[1]).slice(0, 40);
  if (sites.length > 0) console.log('last run, async resources per message by where they were made (sampled 1 in 16):');
  for (const [k, v] of sites) console.log(`    ${v.toFixed(2).padStart(6)}  ${k}`);
}

try {
  await main();
} catch (err) {
  console.error(`bench/steady failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}

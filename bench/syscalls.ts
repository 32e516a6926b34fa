/**
 * bench/syscalls — system calls per relayed message, Halcyon beside Postfix,
 * counted with `strace -c -f` over the same load after a warm-up: N × 1 KiB
 * (smtp-source -s 20 → MTA → smtp-sink), the MTA's processes only (Halcyon:
 * its process, every thread; Postfix: the master and every process it has
 * or starts). strace slows the traced processes a great deal, so only the
 * counts mean anything here, not the time. For Halcyon it also reads the
 * queue-thread requests per message from bench/cost-counters.
 *
 * Prints, per MTA and run, the calls per message in all and for the calls
 * that carry the work (socket reads and writes, fsyncs, epoll, futex), and
 * the medians of the runs. Asserts nothing; needs root, strace and Debian's
 * postfix package.
 *
 * Run: node dist/bench/syscalls.js [messages=1000] [runs=3] [warmup=1000] [mtas=halcyon,postfix]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHalcyon } from './halcyon.js';
import { startPostfix } from './postfix.js';
import { installExitHandlers, pollUntil, processTree, sleep, stopAll } from './procs.js';
import { runSource, startSink, toolsPresent } from './sink.js';
import { median } from './table.js';
import type { CostSnapshot } from './cost-counters.js';

const MESSAGES = Number(process.argv[2] ?? 1000);
const RUNS = Number(process.argv[3] ?? 3);
const WARMUP = Number(process.argv[4] ?? 1000);
const MTAS = (process.argv[5] ?? 'halcyon,postfix').split(',') as ('halcyon' | 'postfix')[];
const BUDGET_MS = 300_000;
const COUNTERS = fileURLToPath(new URL('./cost-counters.js', import.meta.url));
/** The calls shown one by one (the rest are summed in "all"). */
const SHOWN = ['read', 'write', 'writev', 'readv', 'recvfrom', 'sendto', 'recvmsg', 'sendmsg', 'epoll_wait', 'epoll_pwait', 'epoll_ctl', 'futex',
  'fdatasync', 'fsync', 'pwrite64', 'pread64', 'accept4', 'accept', 'connect', 'close', 'openat', 'rename', 'unlink', 'poll', 'select', 'socket', 'fcntl', 'mmap', 'munmap', 'madvise', 'mprotect', 'clone', 'clone3', 'wait4'];

interface Figure { readonly perMsg: Record<string, number>; readonly queueRequests: number | undefined }

/** BENCH_STRACE_DETAIL=1: each call of SHOWN_DETAIL logged with its fd (-yy) instead of -c, and counted by what the fd is. */
const DETAIL = process.env.BENCH_STRACE_DETAIL === '1';
const SHOWN_DETAIL = 'read,write,writev,readv,pwrite64,pread64,fcntl,fsync,fdatasync,recvfrom,sendto';

/** "pid call(fd<what>, …" → "call what", the fd's kind: the MTA's inbound or outbound TCP, an eventfd, a file's name. */
function parseDetail(text: string, inboundPort: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^\d+\s+(\w+)\((\d+)<((?:TCP|UDP):\[[^\]]*\]|[^>]*)>/.exec(line);
    if (!m) continue;
    const what = m[3]!;
    const tcp = /TCP:\[[\d.]+:(\d+)->[\d.]+:(\d+)\]/.exec(what);
    const kind = tcp ? (Number(tcp[1]) === inboundPort ? 'inbound TCP' : 'outbound TCP')
      : /eventfd/.test(what) ? 'eventfd' : /pipe/.test(what) ? 'pipe' : /UNIX/.test(what) ? 'unix socket'
        : what.replace(/^.*\//, '').replace(/^etilqs_\w+$/, 'SQLite temporary file').replace(/^[0-9A-Za-z]{10,}$/, '(queue file)');
    const k = `${m[1]} ${kind}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** strace -c's table: "% time  seconds  usecs/call  calls  [errors]  syscall". */
function parseStrace(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m && m[2] !== 'total') out[m[2]!] = Number(m[1]);
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

async function once(mta: 'halcyon' | 'postfix', run: number): Promise<Figure> {
  const sink = await startSink();
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-strace-'));
  const file = join(dir, 'cost.json');
  process.env.HALCYON_COST_FILE = file;
  try {
    const m = mta === 'halcyon' ? await startHalcyon({ routeTo: sink.port }) : await startPostfix({ relayTo: sink.port });
    try {
      const load = { sessions: 20, size: 1024, recipients: 1 };
      if (WARMUP > 0) {
        await runSource(m.port, { ...load, messages: WARMUP }, BUDGET_MS);
        await pollUntil(() => sink.messages() >= WARMUP, Date.now() + BUDGET_MS, 10);
        await sleep(500);
      }
      const base = sink.messages();
      const root = 'pid' in m ? m.pid : m.masterPid();
      const out = join(dir, 'strace.txt');
      const mode = DETAIL ? ['-f', '-yy', '-e', `trace=${SHOWN_DETAIL}`, '-e', 'signal=none', '-s', '0'] : ['-c', '-f'];
      const tracer = spawn('strace', [...mode, '-o', out, ...processTree(root).flatMap((p) => ['-p', String(p)])], { stdio: 'ignore' });
      await sleep(1_000);
      const s0 = 'pid' in m ? await snapshot(m.pid, file) : undefined;
      await runSource(m.port, { ...load, messages: MESSAGES }, BUDGET_MS);
      await pollUntil(() => sink.messages() >= base + MESSAGES, Date.now() + BUDGET_MS, 10);
      const s1 = 'pid' in m ? await snapshot(m.pid, file) : undefined;
      const got = sink.messages() - base;
      tracer.kill('SIGINT');
      await new Promise((r) => tracer.once('exit', r));
      const calls = DETAIL ? parseDetail(readFileSync(out, 'utf8'), m.port) : parseStrace(readFileSync(out, 'utf8'));
      const perMsg = Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v / got]));
      perMsg.all = Object.values(calls).reduce((a, b) => a + b, 0) / got;
      const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
      const queueRequests = s0 && s1 ? (sum(s1.posts) - sum(s0.posts)) / got : undefined;
      console.log(`run ${run + 1} ${mta.padEnd(8)} ${got} msgs: ${perMsg.all.toFixed(1)} syscalls/msg` +
        (queueRequests !== undefined ? `, ${queueRequests.toFixed(2)} queue-thread requests/msg` : '') +
        `; ${(DETAIL ? Object.keys(perMsg).filter((k) => k !== 'all').sort() : SHOWN).filter((k) => (perMsg[k] ?? 0) >= 0.05).map((k) => `${k} ${perMsg[k]!.toFixed(2)}`).join(', ')}`);
      return { perMsg, queueRequests };
    } finally {
      await m.stop();
    }
  } finally {
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!toolsPresent() || userInfo().uid !== 0 || !existsSync('/usr/bin/strace')) {
    console.error('bench/syscalls: needs root, strace and Debian\'s postfix package');
    process.exitCode = 2;
    return;
  }
  installExitHandlers();
  process.env.BENCH_NODE_ARGS = `${process.env.BENCH_NODE_ARGS ?? ''} --import ${COUNTERS}`;
  const got = new Map<string, Figure[]>(MTAS.map((m) => [m, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const m of run % 2 === 0 ? MTAS : [...MTAS].reverse()) got.get(m)!.push(await once(m, run));
  }
  console.log(`\nper message, ${MESSAGES} × 1 KiB after ${WARMUP} warm-up, 20 sessions: median (range) of ${RUNS} runs`);
  for (const [mta, figs] of got) {
    const keys = ['all', ...(DETAIL ? [...new Set(figs.flatMap((f) => Object.keys(f.perMsg)))].filter((k) => k !== 'all').sort() : SHOWN)].filter((k) => figs.some((f) => (f.perMsg[k] ?? 0) >= 0.05));
    const cell = (xs: number[]): string => {
      const s = [...xs].sort((a, b) => a - b);
      return `${median(s)!.toFixed(2)} (${s[0]!.toFixed(2)}–${s.at(-1)!.toFixed(2)})`;
    };
    console.log(`${mta}: ${keys.map((k) => `${k} ${cell(figs.map((f) => f.perMsg[k] ?? 0))}`).join('; ')}` +
      (figs[0]?.queueRequests !== undefined ? `; queue-thread requests ${cell(figs.map((f) => f.queueRequests ?? 0))}` : ''));
  }
}

try {
  await main();
} catch (err) {
  console.error(`bench/syscalls failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}

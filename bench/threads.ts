/**
 * bench/threads — where Halcyon's CPU goes by thread under the 1 KiB relay
 * load (smtp-source -s 20 → Halcyon → smtp-sink): each thread's user +
 * system CPU from /proc/<pid>/task/<tid>/stat over the load, per 1,000
 * messages, by thread name (MainThread, halcyon-queue, halcyon-session-N,
 * V8's and libuv's helpers), and the load's wall time. Shows which thread
 * bounds a run: one near a whole core while the others are not.
 *
 * `BENCH_HALCYON_WORKERS` sets `[server] workers` (bench/halcyon),
 * `BENCH_PIN=0,1` pins Halcyon with taskset, `BENCH_MESSAGES` (default
 * 5,000). Needs root and smtp-source/smtp-sink; measures, asserts nothing.
 * Run: node dist/bench/threads.js
 */
import { readdirSync, readFileSync } from 'node:fs';
import { pin } from './cores.js';
import { startHalcyon } from './halcyon.js';
import { installExitHandlers, pollUntil } from './procs.js';
import { runSource, startSink } from './sink.js';

const TICK = 100; // USER_HZ: /proc's clock ticks per second on Linux

/** CPU seconds by thread id, with each thread's name. */
function threads(pid: number): Map<string, { name: string; cpu: number }> {
  const out = new Map<string, { name: string; cpu: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { name, cpu: (Number(f[11]) + Number(f[12])) / TICK });
    } catch { /* the thread ended */ }
  }
  return out;
}

async function main(): Promise<void> {
  installExitHandlers();
  const messages = Number(process.env.BENCH_MESSAGES ?? 5_000);
  const sink = await startSink();
  const h = await startHalcyon({ routeTo: sink.port });
  try {
    if (process.env.BENCH_PIN) pin(h.pid, process.env.BENCH_PIN);
    const before = threads(h.pid);
    const t0 = Date.now();
    await runSource(h.port, { sessions: 20, messages, size: 1024, recipients: 1 }, 300_000);
    await pollUntil(() => sink.messages() >= messages, Date.now() + 300_000, 10);
    const wall = (Date.now() - t0) / 1000;
    const after = threads(h.pid);
    const byName = new Map<string, number>();
    for (const [tid, a] of after) {
      const name = tid === String(h.pid) ? 'MainThread' : a.name;
      byName.set(name, (byName.get(name) ?? 0) + a.cpu - (before.get(tid)?.cpu ?? 0));
    }
    const got = sink.messages();
    console.log(`${got} messages in ${wall.toFixed(1)} s (${(got / wall).toFixed(0)} msgs/s end to end); workers ${process.env.BENCH_HALCYON_WORKERS ?? 'default'}, pin ${process.env.BENCH_PIN ?? 'none'}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
    for (const [name, cpu] of [...byName].sort((a, b) => b[1] - a[1])) {
      if (cpu <= 0) continue;
      console.log(`  ${name.padEnd(18)} ${(cpu * 1000 / got).toFixed(2)} s per 1,000   ${(100 * cpu / wall).toFixed(0)} % of a core`);
    }
  } finally {
    await h.stop();
    await sink.stop();
  }
}

await main();

/**
 * bench/cores — how each MTA scales from one core to two: the relay end to
 * end load run with the MTA's processes pinned to CPU 0 (`taskset -c 0`) and
 * then to CPUs 0 and 1 (`taskset -c 0,1`), Halcyon and Postfix alike, and
 * each one's speed-up (2-core msgs/s ÷ 1-core msgs/s, of the medians).
 *
 * Only the MTA is pinned (Halcyon's process and every thread; Postfix's
 * master and every process it has, which the processes it starts inherit);
 * smtp-source and smtp-sink run wherever the kernel puts them, the same for
 * both. On a 2-CPU machine "2 cores" is the whole machine shared with the
 * load generator and the sink, so the speed-up here is a lower bound of
 * what a larger server gives. Returns rows for bench/table; measures,
 * asserts nothing. `BENCH_ONLY=cores` runs it alone (run.ts).
 */
import { cpus } from 'node:os';
import { processTree, sh } from './procs.js';
import { median, type Row, type Runs } from './table.js';

/** Pins a running process tree (every thread of each process) to `cpuList` ("0" or "0,1"); the processes it starts inherit it. */
export function pin(root: number, cpuList: string): void {
  for (const pid of processTree(root)) sh('taskset', ['-a', '-c', '-p', cpuList, String(pid)]);
}

/** The CPU lists measured: one core, then two (when the machine has two). */
export function coreSets(): readonly { readonly label: string; readonly cpus: string }[] {
  return cpus().length >= 2 ? [{ label: '1 core', cpus: '0' }, { label: '2 cores', cpus: '0,1' }] : [];
}

/** One end-to-end figure of an MTA pinned to `cpus` (run.ts's throughput, with the pin). */
export type PinnedRun = (mta: 'halcyon' | 'postfix', cpus: string) => Promise<number | undefined>;

export async function coreRows(label: string, runs: number, measure: PinnedRun): Promise<Row[]> {
  const sets = coreSets();
  if (sets.length < 2) {
    console.error('core-scaling rows skipped: fewer than 2 CPUs');
    return [];
  }
  console.error(`core scaling (relay end to end, ${label}, the MTA pinned with taskset), ${runs} run(s) each`);
  const got = new Map<string, { halcyon: (number | undefined)[]; postfix: (number | undefined)[] }>(sets.map((s) => [s.cpus, { halcyon: [], postfix: [] }]));
  for (let run = 0; run < runs; run++) {
    // Alternate which MTA and which core count go first, so neither always meets a warm or a cold machine.
    const mtas = run % 2 === 0 ? (['halcyon', 'postfix'] as const) : (['postfix', 'halcyon'] as const);
    const order = run % 2 === 0 ? sets : [...sets].reverse();
    for (const s of order) for (const mta of mtas) got.get(s.cpus)![mta].push(await measure(mta, s.cpus));
  }
  const rows: Row[] = sets.map((s) => ({
    what: `Relay end to end, ${label}, MTA on ${s.label} (taskset -c ${s.cpus})`, unit: 'msgs/s',
    halcyon: got.get(s.cpus)!.halcyon as Runs, postfix: got.get(s.cpus)!.postfix as Runs, ratio: 'hp' as const,
    note: 'only the MTA pinned; smtp-source and smtp-sink unpinned',
  }));
  const speedUp = (mta: 'halcyon' | 'postfix'): number | undefined => {
    const one = median(got.get(sets[0]!.cpus)![mta]);
    const two = median(got.get(sets[1]!.cpus)![mta]);
    return one !== undefined && two !== undefined ? two / one : undefined;
  };
  rows.push({
    what: `Speed-up from 1 core to 2, ${label}`, unit: '×', halcyon: [speedUp('halcyon')], postfix: [speedUp('postfix')], ratio: 'hp',
    note: 'median at 2 cores ÷ median at 1 core, each MTA its own; on 2 CPUs the load generator and the sink share the second core',
  });
  return rows;
}

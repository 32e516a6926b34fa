/**
 * bench/cpuprofile — summarizes a V8 `.cpuprofile` (from `node --cpu-prof`,
 * e.g. Halcyon run by the bench with BENCH_NODE_ARGS="--cpu-prof
 * --cpu-prof-dir=DIR") as the top functions by self time, with the share of
 * the profile that was idle, GC or native ("(program)").
 *
 *   node dist/bench/cpuprofile.js FILE.cpuprofile [TOP=25]
 *   node dist/bench/cpuprofile.js FILE.cpuprofile TOP 'NAME'   (also: the call paths, 4 frames up, into
 *                                                              every function whose key contains NAME)
 *
 * It reads one file and prints text; it does not run or profile anything.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Self microseconds per function (name + file:line), from the sample deltas. */
export function selfTimes(p: Profile): { total: number; byFn: Map<string, number> } {
  const nodeById = new Map(p.nodes.map((n) => [n.id, n]));
  const byFn = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // A sample's time is the delta to the next sample (V8's own convention in DevTools).
    const dt = p.timeDeltas[i + 1] ?? 0;
    const n = nodeById.get(p.samples[i]!);
    if (!n) continue;
    const key = keyOf(n);
    byFn.set(key, (byFn.get(key) ?? 0) + dt);
    total += dt;
  }
  return { total, byFn };
}

function keyOf(n: ProfileNode): string {
  const f = n.callFrame;
  const where = f.url ? ` ${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where}`;
}

/** Self microseconds of the functions whose key contains `name`, by their callers' path (`depth` frames up). */
export function callers(p: Profile, name: string, depth = 4): Map<string, number> {
  const parent = new Map<number, ProfileNode>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const nodeById = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const n = nodeById.get(p.samples[i]!);
    if (!n || !keyOf(n).includes(name)) continue;
    const path: string[] = [keyOf(n)];
    for (let up = parent.get(n.id); up && path.length <= depth; up = parent.get(up.id)) path.push(keyOf(up));
    const k = path.join(' ← ');
    out.set(k, (out.get(k) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  return out;
}

function shortUrl(url: string): string {
  const m = /\/(dist\/.*|node_modules\/.*)$/.exec(url);
  if (m) return m[1]!.replace(/^node_modules\//, '');
  return url.startsWith('node:') ? url : basename(url);
}

function main(): void {
  const [file, topArg, name] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/bench/cpuprofile.js FILE.cpuprofile [TOP]');
    process.exitCode = 2;
    return;
  }
  const top = Number(topArg ?? 25);
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const { total, byFn } = selfTimes(p);
  const idle = byFn.get('(idle)') ?? 0;
  const busy = total - idle;
  console.log(`${basename(file)}: ${(total / 1e6).toFixed(2)} s profiled, ${(busy / 1e6).toFixed(2)} s busy (${((busy / total) * 100).toFixed(0)} %)`);
  console.log('self ms   % of busy  function');
  const rows = [...byFn].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, us] of rows) console.log(`${(us / 1000).toFixed(0).padStart(7)}  ${((us / busy) * 100).toFixed(1).padStart(8)} %  ${k}`);
  if (name === undefined) return;
  console.log(`\ncalled as (self ms, % of busy):`);
  for (const [k, us] of [...callers(p, name)].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1000).toFixed(0).padStart(7)}  ${((us / busy) * 100).toFixed(1).padStart(8)} %  ${k}`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) main();

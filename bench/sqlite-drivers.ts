/**
 * bench/sqlite-drivers — better-sqlite3 against Node's built-in node:sqlite,
 * running the queue's own code (src/queue/sqlite, unchanged) on each: the
 * node:sqlite runs load bench/node-sqlite/hook, which puts a shim of the
 * better-sqlite3 API over node:sqlite in its place. For
 * docs/decisions/0016-sqlite-driver.md.
 *
 * Runs, RUNS times each and alternating the driver that goes first (so both
 * meet the same machine load): bench/queue-write (2,000 × 1 KiB messages,
 * group commit and one commit per message) and bench/scheduler-million
 * (MESSAGES × 10 recipients, default 100,000: one million; enqueue, the
 * scheduling passes, nextDueAt, counts, restart). Prints one Markdown table:
 * each figure's median over the runs with [min–max], per driver, and the
 * node:sqlite / better-sqlite3 ratio of the medians. Asserts nothing.
 *
 * Run: node dist/bench/sqlite-drivers.js [runs=3] [messages=100000]   (on Node 24: node_modules/.bin/node)
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.argv[2] ?? 3);
const MESSAGES = Number(process.argv[3] ?? 100_000);
const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const DRIVERS = { 'better-sqlite3': [] as string[], 'node:sqlite': ['--import', here('./node-sqlite/hook.js')] };
type Driver = keyof typeof DRIVERS;

/** The figures a bench printed, by label: "label   1234 ms" or "label   52389 recipients/s". */
function figures(out: string, picks: readonly [string, RegExp][]): Map<string, number> {
  const m = new Map<string, number>();
  for (const [name, re] of picks) {
    const hit = re.exec(out);
    if (hit) m.set(name, Number(hit[1]));
  }
  return m;
}

const QUEUE_WRITE: [string, RegExp][] = [
  ['queue-write: 2,000 msgs, group commit (ms)', /group commit \(all concurrent\)\s+(\d+) ms/],
  ['queue-write: 2,000 msgs, one commit each (ms)', /one commit per message\s+(\d+) ms/],
];
const MILLION: [string, RegExp][] = [
  ['million: enqueue (recipients/s)', /enqueue rate\s+(\d+) recipients\/s/],
  ['million: one pass, rows not parked (ms)', /one pass, waiting rows not parked\s+(\d+) ms/],
  ['million: parking the destination (ms)', /parking the destination[^\n]*?(\d+) ms in/],
  ['million: one pass, in backoff (ms)', /one scheduling pass \(destination in backoff\)\s+(\d+) ms/],
  ['million: nextDueAt (ms)', /nextDueAt\s+(\d+) ms/],
  ['million: counts() (ms)', /counts\(\)\s+(\d+) ms/],
  ['million: restart until ready (ms)', /restart: startApp until ready\s+(\d+) ms/],
  ['million: RSS after enqueue (MiB)', /RSS after enqueue\s+(\d+) MiB/],
];

function run(driver: Driver, bench: string, args: string[]): string {
  return execFileSync(process.execPath, [...DRIVERS[driver], here(bench), ...args], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
}

const results: Record<Driver, Map<string, number[]>> = { 'better-sqlite3': new Map(), 'node:sqlite': new Map() };
for (let i = 0; i < RUNS; i++) {
  const order: Driver[] = i % 2 === 0 ? ['better-sqlite3', 'node:sqlite'] : ['node:sqlite', 'better-sqlite3'];
  for (const d of order) {
    const started = Date.now();
    const out = `${run(d, './queue-write.js', ['2000'])}\n${run(d, './scheduler-million.js', [String(MESSAGES), '600'])}`;
    for (const [k, v] of figures(out, [...QUEUE_WRITE, ...MILLION])) results[d].set(k, [...(results[d].get(k) ?? []), v]);
    process.stderr.write(`run ${i + 1}/${RUNS} ${d}: ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const cell = (xs: number[] | undefined): string => (xs && xs.length ? `${median(xs).toFixed(0)} [${Math.min(...xs)}–${Math.max(...xs)}]` : '—');
console.log(`| figure (${RUNS} runs, median [min–max]) | better-sqlite3 | node:sqlite | node:sqlite / better-sqlite3 |`);
console.log('|---|---|---|---|');
for (const [k] of [...QUEUE_WRITE, ...MILLION]) {
  const a = results['better-sqlite3'].get(k);
  const b = results['node:sqlite'].get(k);
  const ratio = a && b ? (median(b) / median(a)).toFixed(2) : '—';
  console.log(`| ${k} | ${cell(a)} | ${cell(b)} | ${ratio} |`);
}

/**
 * bench/relay — one row of `npm run bench`, on its own and repeated: relay
 * end to end of N × 1 KiB (smtp-source -s 20 → Halcyon → smtp-sink), RUNS
 * times (default 3), each with a fresh queue, printing every run and the
 * medians of "accepted" and "end to end" msgs/s. For checking that a change
 * to the queue or the scheduler does not cost speed, in about a minute,
 * without the Postfix side of the full bench.
 *
 * Same set-up as run.ts's Halcyon rows (bench/halcyon.ts, bench/sink.ts);
 * asserts nothing; needs root and Debian's postfix package for the tools.
 *
 * Run: node dist/bench/relay.js [messages=20000] [runs=3]
 */
import { userInfo } from 'node:os';
import { startHalcyon } from './halcyon.js';
import { installExitHandlers, pollUntil, stopAll } from './procs.js';
import { runSource, startSink, toolsPresent } from './sink.js';

const MESSAGES = Number(process.argv[2] ?? 20_000);
const RUNS = Number(process.argv[3] ?? 3);
const BUDGET_MS = 150_000;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function once(): Promise<{ accepted: number; endToEnd: number }> {
  const sink = await startSink();
  try {
    const h = await startHalcyon({ routeTo: sink.port });
    try {
      const t0 = Date.now();
      const src = await runSource(h.port, { sessions: 20, messages: MESSAGES, size: 1024, recipients: 1 }, BUDGET_MS);
      const done = await pollUntil(() => sink.messages() >= MESSAGES, t0 + BUDGET_MS, 10);
      const e2eS = (Date.now() - t0) / 1000;
      if (!src.finished || !done) throw new Error(`incomplete run: source finished=${src.finished}, sink got ${sink.messages()}/${MESSAGES}`);
      return { accepted: MESSAGES / src.seconds, endToEnd: MESSAGES / e2eS };
    } finally {
      await h.stop();
    }
  } finally {
    await sink.stop();
  }
}

async function main(): Promise<void> {
  if (!toolsPresent() || userInfo().uid !== 0) {
    console.error('bench/relay: needs root and Debian\'s postfix package (smtp-source, smtp-sink)');
    process.exitCode = 2;
    return;
  }
  installExitHandlers();
  const runs: { accepted: number; endToEnd: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await once();
    runs.push(r);
    console.log(`run ${i + 1}: accepted ${r.accepted.toFixed(0)} msgs/s, end to end ${r.endToEnd.toFixed(0)} msgs/s`);
  }
  console.log(`median of ${RUNS} × ${MESSAGES.toLocaleString('en-US')} × 1 KiB: accepted ${median(runs.map((r) => r.accepted)).toFixed(0)} msgs/s, ` +
    `end to end ${median(runs.map((r) => r.endToEnd)).toFixed(0)} msgs/s`);
}

try {
  await main();
} catch (err) {
  console.error(`bench/relay failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}

/**
 * bench/cluster — what a shared PostgreSQL queue costs: relay end to end of
 * N × 1 KiB (smtp-source → Halcyon → smtp-sink, until the sink counted them
 * all) with the SQLite queue on one node, the PostgreSQL queue on one node,
 * and the PostgreSQL queue shared by three nodes on this machine (the load
 * split over them: three smtp-source processes, 20 sessions in all). On one
 * machine three nodes share its cores, so the three-node figure is the cost
 * of sharing the queue, not a gain in capacity.
 *
 * Each run gets fresh queues: a private database created and dropped per
 * PostgreSQL figure (test/support/postgres, 127.0.0.1:5432 or PG_URL). The
 * three set-ups rotate their order each run. Returns rows for bench/table
 * (`npm run bench` runs it after the DKIM rows; `BENCH_ONLY=cluster` runs
 * it alone) — or none, with the reason on stderr, when PostgreSQL does not
 * answer. Measures, asserts nothing.
 */
import { startHalcyon, type BenchHalcyon } from './halcyon.js';
import { pollUntil } from './procs.js';
import { runSource, startSink } from './sink.js';
import { median, type Row, type Runs } from './table.js';
import { createTestDatabase, pgUnavailable, type TestDatabase } from '../test/support/postgres.js';

type Setup = 'sqlite-1' | 'postgres-1' | 'postgres-3';
const SETUPS: readonly Setup[] = ['sqlite-1', 'postgres-1', 'postgres-3'];
const LABEL: Readonly<Record<Setup, string>> = {
  'sqlite-1': 'SQLite queue, 1 node', 'postgres-1': 'PostgreSQL queue, 1 node', 'postgres-3': 'PostgreSQL queue, 3 nodes',
};
const SESSIONS = 20;

interface Figure { readonly endToEnd: number | undefined; readonly accepted: number | undefined; readonly note: string }

async function once(setup: Setup, messages: number, budgetMs: number): Promise<Figure> {
  const sink = await startSink();
  let db: TestDatabase | undefined;
  const nodes: BenchHalcyon[] = [];
  try {
    if (setup === 'sqlite-1') nodes.push(await startHalcyon({ routeTo: sink.port }));
    else {
      db = await createTestDatabase();
      // One at a time: the first creates the schema, the others find it current.
      for (let i = 0; i < (setup === 'postgres-3' ? 3 : 1); i++) nodes.push(await startHalcyon({ routeTo: sink.port, postgres: { url: db.url, node: `bench-${i}` } }));
    }
    // The load split evenly over the nodes (the first takes the remainder), as a balancer in front of them would.
    const share = (i: number): number => Math.floor(messages / nodes.length) + (i === 0 ? messages % nodes.length : 0);
    const t0 = Date.now();
    const sources = await Promise.all(nodes.map((h, i) => runSource(h.port, {
      sessions: Math.max(1, Math.round(SESSIONS / nodes.length)), messages: share(i), size: 1024, recipients: 1,
    }, budgetMs)));
    const done = await pollUntil(() => sink.messages() >= messages, t0 + budgetMs, 10);
    const e2eS = (Date.now() - t0) / 1000;
    const acceptedS = Math.max(...sources.map((s) => s.seconds));
    const finished = sources.every((s) => s.finished);
    const notes: string[] = [];
    if (!finished) notes.push(`smtp-source: ${sources.filter((s) => !s.finished).map((s) => (s.code === null ? 'stopped at the budget' : `exited ${s.code}: ${s.stderr.trim().split('\n').pop()}`)).join(', ')}`);
    if (!done) notes.push(`sink got ${sink.messages()}/${messages} in ${e2eS.toFixed(0)} s`);
    const f: Figure = { endToEnd: sink.messages() / e2eS, accepted: finished ? messages / acceptedS : undefined, note: notes.join('; ') };
    console.error(`  halcyon  ${LABEL[setup].padEnd(26)} accepted ${f.accepted?.toFixed(0) ?? '—'} msgs/s, end to end ${f.endToEnd?.toFixed(0)} msgs/s (${e2eS.toFixed(1)} s)${f.note ? ` [${f.note}]` : ''}`);
    return f;
  } finally {
    for (const h of nodes) await h.stop();
    await sink.stop();
    await db?.drop().catch((err: unknown) => console.error(`  could not drop ${db?.url}: ${(err as Error).message}`));
  }
}

export async function clusterRows(messages: number, runs: number, budgetMs: number): Promise<Row[]> {
  const why = await pgUnavailable().catch((err: unknown) => (err as Error).message);
  if (why !== undefined) {
    console.error(`cluster rows skipped: ${why}`);
    return [];
  }
  console.error(`relay end to end on a shared queue (smtp-source -s ${SESSIONS} in all, ${messages} × 1 KiB), ${runs} run(s) each`);
  const got = new Map<Setup, Figure[]>(SETUPS.map((s) => [s, []]));
  for (let run = 0; run < runs; run++) {
    const order = SETUPS.map((_, i) => SETUPS[(i + run) % SETUPS.length]!);
    for (const s of order) got.get(s)!.push(await once(s, messages, budgetMs));
  }
  const label = `${messages.toLocaleString('en-US')} × 1 KiB`;
  return SETUPS.map((s) => {
    const figures = got.get(s)!;
    const accepted = median(figures.map((f) => f.accepted));
    const notes = figures.filter((f) => f.note).map((f) => f.note);
    return {
      what: `Relay end to end, ${label}, ${LABEL[s]}`, unit: 'msgs/s', halcyon: figures.map((f) => f.endToEnd) as Runs, postfix: [], ratio: 'none' as const,
      note: [
        s === 'postgres-3' ? 'three nodes on this one machine, the load split over them: the cost of sharing, not added capacity' : 'Halcyon only',
        accepted === undefined ? '' : `accepted (last 250) median ${accepted.toFixed(0)} msgs/s`,
        ...notes,
      ].filter(Boolean).join('; '),
    };
  });
}

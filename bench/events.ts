/**
 * bench/events — what the event outbox costs: relay end to end of N × 1 KiB
 * (smtp-source -s 20 → Halcyon → smtp-sink) with no event sink, and with a
 * webhook sink (an HTTP receiver in this process, answering 204) that gets
 * every event: `received` and `delivered` for each message, 2N in all. The
 * second figure counts until the sink has every message AND the receiver
 * every event, so it includes draining the outbox. The two set-ups alternate
 * which goes first, each run with a fresh queue. Returns rows for bench/table
 * (`npm run bench` runs it after the cluster rows; `BENCH_ONLY=events` runs it
 * alone). Measures, asserts nothing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHalcyon } from './halcyon.js';
import { pollUntil } from './procs.js';
import { runSource, startSink } from './sink.js';
import { type Row, type Runs } from './table.js';

type Setup = 'none' | 'webhook';
const SESSIONS = 20;

interface Figure { readonly endToEnd: number | undefined; readonly note: string }

/** A receiver that counts distinct event ids and answers 204 to every batch. */
async function startReceiver(): Promise<{ url: string; events(): number; stop(): Promise<void> }> {
  const ids = new Set<string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      for (const e of JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id: string }[]) ids.add(e.id);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/events`, events: () => ids.size,
    stop: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

async function once(setup: Setup, messages: number, budgetMs: number): Promise<Figure> {
  const sink = await startSink();
  const receiver = setup === 'webhook' ? await startReceiver() : undefined;
  try {
    const h = await startHalcyon({ routeTo: sink.port, ...(receiver ? { webhook: receiver.url } : {}) });
    try {
      const t0 = Date.now();
      const src = await runSource(h.port, { sessions: SESSIONS, messages, size: 1024, recipients: 1 }, budgetMs);
      const done = await pollUntil(() => sink.messages() >= messages && (receiver === undefined || receiver.events() >= 2 * messages), t0 + budgetMs, 10);
      const e2eS = (Date.now() - t0) / 1000;
      const notes: string[] = [];
      if (!src.finished) notes.push('smtp-source did not finish');
      if (!done) notes.push(`sink got ${sink.messages()}/${messages}${receiver ? `, receiver ${receiver.events()}/${2 * messages} events` : ''} in ${e2eS.toFixed(0)} s`);
      const f: Figure = { endToEnd: done ? messages / e2eS : undefined, note: notes.join('; ') };
      console.error(`  halcyon  ${setup === 'none' ? 'no event sink' : 'webhook sink '} end to end ${f.endToEnd?.toFixed(0) ?? '—'} msgs/s (${e2eS.toFixed(1)} s)${f.note ? ` [${f.note}]` : ''}`);
      return f;
    } finally {
      await h.stop();
    }
  } finally {
    await receiver?.stop();
    await sink.stop();
  }
}

export async function eventRows(messages: number, runs: number, budgetMs: number): Promise<Row[]> {
  console.error(`relay end to end with and without a webhook sink (smtp-source -s ${SESSIONS}, ${messages} × 1 KiB), ${runs} run(s) each`);
  const got = new Map<Setup, Figure[]>([['none', []], ['webhook', []]]);
  for (let run = 0; run < runs; run++) {
    for (const s of (run % 2 === 0 ? ['none', 'webhook'] : ['webhook', 'none']) as Setup[]) got.get(s)!.push(await once(s, messages, budgetMs));
  }
  const label = `${messages.toLocaleString('en-US')} × 1 KiB`;
  const row = (s: Setup, what: string, note: string): Row => ({
    what: `Relay end to end, ${label}, ${what}`, unit: 'msgs/s', halcyon: got.get(s)!.map((f) => f.endToEnd) as Runs, postfix: [], ratio: 'none',
    note: [note, ...got.get(s)!.filter((f) => f.note).map((f) => f.note)].join('; '),
  });
  return [
    row('none', 'no event sink', 'Halcyon only'),
    row('webhook', 'webhook sink receiving every event', `Halcyon only; until the sink has every message and the receiver all ${(2 * messages).toLocaleString('en-US')} events (received + delivered)`),
  ];
}

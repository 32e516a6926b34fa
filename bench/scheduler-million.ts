/**
 * bench/scheduler-million — how the scheduler copes with a very large queue:
 * 1,000,000 recipients (100,000 messages × 10, 1 KiB bodies) for one
 * blackholed destination (a route to a closed port). Prints the enqueue rate,
 * RSS after enqueue, the time of one scheduling pass with the destination
 * already in backoff (so the pass is pure queue work: sweeps, claim, cleanup;
 * no connection), its RSS, nextDueAt's time, and the restart time (startApp
 * on the same data_dir until ready, plus releaseNodeLeases).
 *
 * Prints figures; asserts nothing. Bounded: enqueueing stops after
 * BUDGET_S seconds (default 240) and the figures are then given for what was
 * reached, with the extrapolated time for the full million.
 *
 * Run: node .tmp/build-XX/bench/scheduler-million.js [messages=100000] [budget_s=240]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startApp, type App } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { destinationKey } from '../src/delivery/route.js';
import { freeLoopbackPort } from '../test/support/postfix-instance.js';

const MESSAGES = Number(process.argv[2] ?? 100_000);
const BUDGET_S = Number(process.argv[3] ?? 240);
const PER_MESSAGE = 10;
const CHUNK = 1_000; // enqueues in flight at once; the store group-commits up to 256 per transaction
const BODY = Buffer.concat([Buffer.from('From: bench@sender.test\r\nTo: x@blackhole.test\r\nSubject: bench\r\n\r\n'), Buffer.alloc(1024, 0x61), Buffer.from('\r\n')]);

const mib = (): string => `${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`;
const line = (what: string, value: string): void => console.log(`${what.padEnd(48)} ${value}`);

/** A loopback port nothing listens on (it was free a moment ago). */
const closedPort = (): Promise<number> => freeLoopbackPort();

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await f();
  return [v, performance.now() - t];
}

const open = (cfg: Config): Promise<App> => startApp(cfg, { manualScheduler: true, logger: pino({ level: 'silent' }) });

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-bench-million-'));
  try {
    const cfg = parseConfig({
      hostname: 'bench.halcyon.test', data_dir: dir, smtp: { listen: ['127.0.0.1:0'] }, http: { enabled: false },
      routes: { 'blackhole.test': `127.0.0.1:${await closedPort()}` },
    });
    const destination = destinationKey('blackhole.test', cfg.routes);
    let app = await open(cfg);
    line('target', `${MESSAGES} messages × ${PER_MESSAGE} recipients, ${BODY.length} B bodies`);
    line('RSS at start', mib());

    const t0 = performance.now();
    let done = 0;
    let stoppedEarly = false;
    for (; done < MESSAGES; done += CHUNK) {
      if ((performance.now() - t0) / 1000 > BUDGET_S) {
        stoppedEarly = true;
        break;
      }
      const n = Math.min(CHUNK, MESSAGES - done);
      await Promise.all(Array.from({ length: n }, (_, k) => app.store.messages.enqueue({
        sender: 'bench@sender.test', params: { smtputf8: false }, receivedAt: Date.now(),
        trace: { clientIp: '127.0.0.1', clientHelo: 'bench', protocol: 'ESMTP' }, body: BODY,
        recipients: Array.from({ length: PER_MESSAGE }, (_, j) => ({ address: `u${done + k}-${j}@blackhole.test`, destination })),
      })));
    }
    done = Math.min(done, MESSAGES);
    const enqueueS = (performance.now() - t0) / 1000;
    const recipients = done * PER_MESSAGE;
    line('enqueued', `${done} messages, ${recipients} recipients in ${enqueueS.toFixed(1)} s`);
    line('enqueue rate', `${(recipients / enqueueS).toFixed(0)} recipients/s (${(done / enqueueS).toFixed(0)} messages/s)`);
    if (stoppedEarly) {
      line('STOPPED EARLY (time budget)', `extrapolated ${(MESSAGES * PER_MESSAGE / (recipients / enqueueS) / 60).toFixed(1)} min for ${MESSAGES * PER_MESSAGE} recipients`);
    }
    line('RSS after enqueue', mib());

    // Blackholed and known to be: the pass below must not connect, only do queue work.
    const now = Date.now();
    await app.store.gate.putDestination({ key: destination, health: 'backoff', backoffUntil: now + 86_400_000, backoffMs: 3_600_000, consecutiveFailures: 1, updatedAt: now });
    // Unparked first: what a pass costs when the waiting rows still look due (a backoff set from outside qmgr).
    const [, rawMs] = await timed(() => app.qmgr.runOnce());
    line('one pass, waiting rows not parked', `${rawMs.toFixed(0)} ms`);
    // What qmgr does when it puts a destination into backoff: its waiting rows become due at the backoff's end.
    let slices = 0;
    let longest = 0;
    const [, parkMs] = await timed(async () => {
      for (;;) {
        const [n, ms] = await timed(() => app.store.recipients.parkDestination(destination, now + 86_400_000, 5_000));
        slices++;
        longest = Math.max(longest, ms);
        if (n < 5_000) break;
      }
    });
    line('parking the destination (once per backoff step)', `${parkMs.toFixed(0)} ms in ${slices} slices of 5,000, longest ${longest.toFixed(0)} ms`);
    const [, passMs] = await timed(() => app.qmgr.runOnce());
    line('one scheduling pass (destination in backoff)', `${passMs.toFixed(0)} ms`);
    const [, pass2Ms] = await timed(() => app.qmgr.runOnce());
    line('a second pass', `${pass2Ms.toFixed(0)} ms`);
    line('connections opened during the passes', String(app.smtp.stats.connectionsOpened));
    const [next, nextMs] = await timed(() => app.store.recipients.nextDueAt());
    line('nextDueAt', `${nextMs.toFixed(0)} ms (due in ${(((next ?? now) - now) / 3_600_000).toFixed(1)} h)`);
    const [counts, countsMs] = await timed(() => app.store.recipients.counts());
    line('counts()', `${countsMs.toFixed(0)} ms (${counts.messages} messages, ${counts.byState.queued} queued)`);
    line('RSS after the passes', mib());

    await app.stop(2_000);
    const [reopened, startMs] = await timed(() => open(cfg));
    app = reopened;
    const [released, releaseMs] = await timed(() => app.store.recipients.releaseNodeLeases(cfg.node_id, Date.now()));
    line('restart: startApp until ready', `${startMs.toFixed(0)} ms`);
    line('restart: releaseNodeLeases', `${releaseMs.toFixed(0)} ms (${released} released)`);
    line('RSS after restart', mib());
    await app.stop(2_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

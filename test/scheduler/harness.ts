/**
 * test/scheduler/harness — shared set-up for the scheduler integration tests:
 * an in-process Halcyon on a fake clock with the scheduler driven by hand
 * (`qmgr.runOnce()`), bulk enqueue straight into its store, and a bounded
 * "let simulated time pass" loop.
 *
 * Delivery uses real sockets (to test/support/remote-smtp or a closed port);
 * only the time Halcyon reads is fake. It asserts nothing itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startApp, type App } from '../../src/app.js';
import { freePort } from '../support/halcyon.js';
import { parseConfig } from '../../src/config/load.js';
import { destinationKey } from '../../src/delivery/route.js';
import type { MessageId } from '../../src/queue/model.js';
import type { Queue } from '../../src/queue/store.js';
import { FakeClock } from '../support/fake-clock.js';

export const REMOTE_DOMAIN = 'dead.test';
/** The senders live in a local domain, so any DSN lands in a Maildir (no DNS, no network). */
export const LOCAL_DOMAIN = 'local.test';
export const SENDER = `sender@${LOCAL_DOMAIN}`;

export interface SchedulerHarness {
  readonly app: App;
  readonly clock: FakeClock;
  readonly dataDir: string;
  /** Destination key of REMOTE_DOMAIN under this config's routes. */
  readonly destination: string;
  stop(): Promise<void>;
}

type Obj = Record<string, unknown>;

/** `delivery` is merged over short test timeouts; `port` is where REMOTE_DOMAIN is routed. */
export async function startHarness(port: number, delivery: Obj = {}, extra: Obj = {}): Promise<SchedulerHarness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-sched-'));
  const clock = new FakeClock();
  const { timeouts, ...rest } = delivery as { timeouts?: Obj } & Obj;
  const cfg = parseConfig({
    hostname: 'mx.halcyon.test',
    data_dir: dataDir,
    smtp: { listen: ['127.0.0.1:0'] },
    http: { enabled: false },
    routes: { [REMOTE_DOMAIN]: `127.0.0.1:${port}` },
    domains: [{ name: LOCAL_DOMAIN, mailboxes: [{ user: 'sender' }] }],
    delivery: {
      tls: 'none',
      timeouts: { connect: '500ms', greeting: '500ms', command: '2s', data_init: '2s', data_block: '2s', data_done: '2s', ...timeouts },
      ...rest,
    },
    ...extra,
  });
  let app: App;
  try {
    app = await startApp(cfg, { clock: clock.now, manualScheduler: true, random: () => 0.5, logger: pino({ level: 'silent' }) });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    app, clock, dataDir,
    destination: destinationKey(REMOTE_DOMAIN, cfg.routes),
    async stop() {
      await app.stop(2_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const BODY = Buffer.from('From: sender@local.test\r\nTo: someone@dead.test\r\nSubject: test\r\nMessage-ID: <t@local.test>\r\n\r\nHello.\r\n');

/**
 * Enqueues `count` messages of `perMessage` recipients each (user<i>-<j>@domain),
 * 500 at a time concurrently so the store's group commit batches them.
 */
export async function enqueueMany(store: Queue, opts: {
  count: number; destination: string; domain?: string; perMessage?: number; receivedAt: number; sender?: string; body?: Buffer;
}): Promise<MessageId[]> {
  const ids: MessageId[] = [];
  const per = opts.perMessage ?? 1;
  const domain = opts.domain ?? REMOTE_DOMAIN;
  for (let start = 0; start < opts.count; start += 500) {
    const chunk = Array.from({ length: Math.min(500, opts.count - start) }, (_, k) => start + k);
    ids.push(...await Promise.all(chunk.map((i) => store.messages.enqueue({
      sender: opts.sender ?? SENDER,
      params: { smtputf8: false },
      receivedAt: opts.receivedAt,
      trace: { clientIp: '127.0.0.1', clientHelo: 'client.test', protocol: 'ESMTP' },
      body: opts.body ?? BODY,
      recipients: Array.from({ length: per }, (_, j) => ({ address: `user${i}-${j}@${domain}`, destination: opts.destination })),
    }))));
  }
  return ids;
}

/** One scheduling pass of `simulate`: when it ran (fake time) and how many connection attempts it made. */
export interface PassRecord {
  readonly at: number;
  readonly attempts: number;
}

/**
 * Lets simulated time pass until `until`: a scheduling pass, then the clock
 * jumps to the next moment anything is due (or to `until`). `attempts` reads
 * a running count of connection attempts (the remote's, or the transport's);
 * each pass records how many it made. Bounded by `maxPasses`.
 */
export async function simulate(h: SchedulerHarness, until: number, attempts: () => number, maxPasses = 200): Promise<PassRecord[]> {
  const log: PassRecord[] = [];
  while (log.length < maxPasses && h.clock.now() < until) {
    const at = h.clock.now();
    const before = attempts();
    await h.app.qmgr.runOnce();
    log.push({ at, attempts: attempts() - before });
    const next = await h.app.store.recipients.nextDueAt();
    // Something due now again (more than one pass of work): run again without moving time.
    if (next !== undefined && next <= h.clock.now()) continue;
    h.clock.set(Math.min(until, next ?? until));
  }
  return log;
}

/**
 * When a failing destination should be probed, per its backoff schedule:
 * at 0, then after `first`, doubling up to `max`, strictly before `horizon`
 * (offsets from the first attempt).
 */
export function probeSchedule(first: number, max: number, horizon: number): number[] {
  const times = [0];
  if (!(first > 0)) throw new RangeError('probeSchedule: first must be > 0');
  let step = first;
  // Bounded: every step is ≥ first > 0.
  for (let at = first; at < horizon; ) {
    times.push(at);
    step = Math.min(max, step * 2);
    at += step;
  }
  return times;
}

/** A loopback port with nothing listening (bound, noted, closed): connects to it are refused. */
export const closedPort = freePort;

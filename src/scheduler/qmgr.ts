/**
 * scheduler/qmgr — the queue manager: picks due recipients, groups them by
 * message and destination, gates them by the destination's health and
 * limits, runs deliveries on the transports and applies the outcomes.
 *
 * What keeps invariant I5 (no storms) true: a destination in backoff is not
 * claimed from at all (the store's claim query skips it), and when its
 * backoff ends exactly one probe connection goes out; until the probe's
 * result is known no second connection opens. A connection-level failure
 * defers every waiting batch of that destination to the end of its backoff
 * without connecting, and without spending the recipients' own retry steps.
 *
 * Memory is bounded by what is claimed (at most a few batches per free
 * connection), never by the queue's size. The clock is injected; `runOnce`
 * does one whole pass and waits for its deliveries, for tests.
 *
 * Reports (DSNs), expiry and delay warnings are driven by queue state in
 * sweeps (scheduler/sweeps), so a crash loses none of them.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { durationMs, parseRate } from '../config/units.js';
import type { BatchResult, OutboundBatch, RecipientVerdict, Transport } from '../delivery/types.js';
import type { DestinationRow, LastReply, Outcome, RecipientOutcome } from '../queue/model.js';
import type { Store } from '../queue/store.js';
import { groupBatches, type Batch } from './batches.js';
import { destinationFailed, destinationRecovered, gate, retryDelay, type RetrySettings } from './retry.js';
import { Sweeps, type SweepDeps } from './sweeps.js';

export interface QmgrDeps {
  readonly store: Store;
  readonly smtp: Transport;
  readonly local: Transport;
  /** The configuration in force, read at use time (config/live). */
  readonly config: () => Config;
  readonly log: Logger;
  readonly clock: () => number;
  readonly random?: () => number;
  /** Lease owner name (process/node id). */
  readonly owner: string;
  readonly sweeps: Omit<SweepDeps, 'store' | 'log'>;
  readonly onOutcome?: (status: 'sent' | 'deferred' | 'bounced' | 'expired', destination: string, latencyMs: number) => void;
}

interface DestState {
  readonly key: string;
  readonly queue: Batch[];
  /** The destination's row as last read or written here (saves a queue round trip per batch). */
  health: DestinationRow | undefined;
  workers: number;
  probing: boolean;
  tokens: number;
  tokensAt: number;
}

const isLocal = (destination: string): boolean => destination.startsWith('local:');

/** Least real time between two passes: a burst of new mail is claimed in one pass (costs ≤ 10 ms of latency). */
const PASS_GAP_MS = 10;

/** Rows parked per queue request when a destination goes into backoff. */
const PARK_SLICE = 5_000;

/** How often (in clock time) leases are checked and the expiry and delay sweeps run. */
const HOUSEKEEPING_MS = 30_000;

export class Qmgr {
  private readonly dests = new Map<string, DestState>();
  private readonly workers = new Set<Promise<void>>();
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private lastHousekeeping = -Infinity;
  /** Real time (performance.now) the last pass started, and whether the next is already scheduled soon. */
  private lastPassAt = -Infinity;
  private soon = false;
  private readonly retry: RetrySettings;
  private readonly random: () => number;
  private readonly sweeps: Sweeps;
  private readonly rate: { count: number; perMs: number } | undefined;
  readonly stats = { connectionsStarted: 0, batches: 0, passes: 0 };

  constructor(private readonly deps: QmgrDeps) {
    const d = deps.config().delivery;
    this.retry = {
      retryInitialMs: durationMs(d.retry_initial), retryMaxMs: durationMs(d.retry_max),
      backoffMs: durationMs(d.destination_backoff), backoffMaxMs: durationMs(d.destination_backoff_max),
    };
    this.random = deps.random ?? Math.random;
    this.rate = d.destination_rate ? parseRate(d.destination_rate) : undefined;
    this.sweeps = new Sweeps({ ...deps.sweeps, store: deps.store, log: deps.log });
  }

  /** On start every `inflight` recipient is due again (their worker died with the last process). */
  async start(): Promise<void> {
    const n = await this.deps.store.releaseAllInflight(this.deps.clock());
    if (n > 0) this.deps.log.info({ event: 'recovered_inflight', count: n }, `${n} recipient(s) in flight at the last stop are due again`);
    this.stopped = false;
    this.poke();
  }

  /**
   * Run a pass soon (new mail, a flush). Passes are at least PASS_GAP_MS apart in real time, so a burst of
   * new mail is claimed together rather than one message per pass (each pass costs queue round trips).
   */
  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.soon) return;
    if (this.timer) clearTimeout(this.timer);
    this.scheduleSoon();
  }

  private scheduleSoon(): void {
    this.soon = true;
    const wait = Math.max(0, this.lastPassAt + PASS_GAP_MS - performance.now());
    this.timer = setTimeout(() => void this.loop(), wait);
  }

  private async loop(): Promise<void> {
    this.timer = undefined;
    this.soon = false;
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.lastPassAt = performance.now();
    this.running = this.pass().catch((err: unknown) => {
      this.deps.log.error({ event: 'qmgr_error', err: (err as Error).message }, 'queue manager pass failed');
    });
    await this.running;
    this.running = undefined;
    if (this.stopped) return;
    if (this.again) {
      this.again = false;
      this.scheduleSoon();
      return;
    }
    const scan = durationMs(this.deps.config().delivery.queue_scan_interval);
    const next = await this.deps.store.nextDueAt().catch(() => undefined);
    // A poke while we asked has scheduled the next pass already; a second timer would run two loops.
    if (this.soon || this.stopped) return;
    const now = this.deps.clock();
    // A due time in the past means it is due but not claimable now (held, its destination busy): wait a scan.
    const wait = next === undefined || next <= now ? scan : Math.min(scan, next - now);
    this.timer = setTimeout(() => void this.loop(), wait);
    this.timer.unref?.();
  }

  /** One pass and all the deliveries it started (tests drive the scheduler with this and a fake clock). */
  async runOnce(): Promise<void> {
    await this.pass();
    await this.idle();
  }

  async idle(): Promise<void> {
    while (this.workers.size > 0) await Promise.all([...this.workers]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.idle();
    // Messages finished by the last deliveries leave the queue now, not at the next start.
    for (let i = 0; i < 100; i++) if ((await this.deps.store.removeCompleted(1000)).length < 1000) break;
  }

  /** Open connections per destination, for `halcyon destinations` and metrics. */
  connections(): Map<string, number> {
    return new Map([...this.dests.values()].filter((d) => d.workers > 0).map((d) => [d.key, d.workers]));
  }

  private async pass(): Promise<void> {
    const { store, clock } = this.deps;
    this.stats.passes++;
    const now = clock();
    // Lease recovery and the expiry/delay sweeps look at old rows only; once per interval of (injected) time is enough.
    const housekeeping = now - this.lastHousekeeping >= HOUSEKEEPING_MS;
    if (housekeeping) this.lastHousekeeping = now;
    // Issued together so the queue thread answers them in one commit, not one commit each.
    await Promise.all([
      housekeeping ? store.releaseExpiredLeases(now) : undefined,
      this.sweeps.run(now, housekeeping),
      this.dispatch(now),
      store.removeCompleted(1000),
    ]);
  }

  private dest(key: string): DestState {
    let d = this.dests.get(key);
    if (!d) {
      d = { key, queue: [], health: undefined, workers: 0, probing: false, tokens: this.rate?.count ?? 0, tokensAt: this.deps.clock() };
      this.dests.set(key, d);
    }
    return d;
  }

  private capOf(d: DestState): number {
    return d.probing ? 1 : this.deps.config().delivery.max_connections_per_destination;
  }

  private async dispatch(now: number): Promise<void> {
    const cfg = this.deps.config().delivery;
    const free = cfg.max_connections - this.active;
    if (free <= 0) return;
    // A destination with work waiting in memory, or in a probe, takes no more claims until it drains.
    const exclude = [...this.dests.values()].filter((d) => d.queue.length > 0 || d.probing || (this.rate && this.refill(d, now) < 1)).map((d) => d.key);
    const rows = await this.deps.store.claimDue({
      now, limit: Math.min(2000, free * cfg.max_recipients_per_transaction), owner: this.deps.owner,
      leaseUntil: now + durationMs(cfg.lease), excludeDestinations: exclude,
    });
    if (rows.length === 0) return;
    // Every destination's row in one go (one queue turn), not one round trip each.
    const keys = [...new Set(rows.map((r) => r.destination))];
    const healths = await Promise.all(keys.map((k) => this.deps.store.getDestination(k)));
    keys.forEach((k, i) => { this.dest(k).health = healths[i]; });
    for (const b of groupBatches(rows, cfg.max_recipients_per_transaction)) {
      const d = this.dest(b.destination);
      const g = gate(d.health, now);
      if (!g.open) {
        // Raced with a backoff set since the claim: back to waiting, no attempt spent.
        await this.deferBatch(b, g.until, { code: 451, enhanced: '4.4.1', text: 'delivery temporarily suspended (destination in backoff)' });
        continue;
      }
      if (g.probe && d.workers === 0) d.probing = true;
      d.queue.push(b);
    }
    for (const d of this.dests.values()) this.startWorkers(d);
  }

  private refill(d: DestState, now: number): number {
    if (!this.rate) return Infinity;
    const elapsed = now - d.tokensAt;
    d.tokens = Math.min(this.rate.count, d.tokens + (elapsed * this.rate.count) / this.rate.perMs);
    d.tokensAt = now;
    return d.tokens;
  }

  private startWorkers(d: DestState): void {
    while (d.queue.length > 0 && d.workers < this.capOf(d) && this.active < this.deps.config().delivery.max_connections) {
      d.workers++;
      this.active++;
      this.stats.connectionsStarted++;
      const w: Promise<void> = this.worker(d).finally(() => {
        d.workers--;
        this.active--;
        this.workers.delete(w);
        if (d.queue.length === 0 && d.workers === 0) this.dests.delete(d.key);
        else this.startWorkers(d);
      });
      this.workers.add(w);
    }
  }

  /** Takes batches of one destination until none is left or the destination fails. */
  private async worker(d: DestState): Promise<void> {
    for (;;) {
      const batch = d.queue.shift();
      if (!batch) return;
      const now = this.deps.clock();
      if (this.rate) {
        if (this.refill(d, now) < 1) {
          const wait = Math.ceil(((1 - d.tokens) * this.rate.perMs) / this.rate.count);
          await this.deferBatch(batch, now + wait, { code: 451, enhanced: '4.7.0', text: 'destination rate limit reached' });
          continue;
        }
        d.tokens -= 1;
      }
      const result = await this.deliverBatch(batch, d);
      if (result.destinationFailure) {
        await this.destinationDown(d, result.destinationFailure);
        return;
      }
      if (d.probing || (d.health !== undefined && d.health.health === 'backoff')) {
        const wasProbe = d.probing;
        d.probing = false;
        d.health = destinationRecovered(d.health, d.key, this.deps.clock());
        await this.deps.store.putDestination(d.health);
        this.deps.log.info({ event: 'destination_recovered', destination: d.key }, 'destination recovered');
        if (wasProbe) this.startWorkers(d);
      }
    }
  }

  private async deliverBatch(batch: Batch, d: DestState): Promise<BatchResult> {
    const { store } = this.deps;
    // Asked together, answered in one queue turn.
    const [message, body] = await Promise.all([store.getMessage(batch.messageId), store.getBody(batch.messageId).catch(() => undefined)]);
    if (!message || !body) {
      // Deleted while claimed (queue delete): nothing to do.
      return {};
    }
    const outbound: OutboundBatch = { destination: batch.destination, domain: batch.domain, message, body, recipients: batch.recipients };
    const transport = isLocal(batch.destination) ? this.deps.local : this.deps.smtp;
    this.stats.batches++;
    const prev = d.health;
    const record = (v: ReadonlyMap<number, RecipientVerdict>) => this.record(outbound, v, prev);
    try {
      return await transport.deliver(outbound, record);
    } catch (err) {
      // A transport bug must not strand recipients in flight: they are deferred and the lease is cleared.
      this.deps.log.error({ event: 'transport_error', queue_id: message.id, destination: d.key, err: (err as Error).stack }, 'transport failed');
      const reply: LastReply = { code: 451, enhanced: '4.3.0', text: `internal error: ${(err as Error).message}` };
      const left = batch.recipients.map((r) => [r.id, { kind: 'deferred', reply } as RecipientVerdict] as const);
      await this.record(outbound, new Map(left), prev).catch(() => undefined);
      return {};
    }
  }

  /** Turns verdicts into durable outcomes and log lines. Called by transports after each transaction. */
  private async record(batch: OutboundBatch, verdicts: ReadonlyMap<number, RecipientVerdict>, prev: DestinationRow | undefined): Promise<void> {
    const now = this.deps.clock();
    const outcomes: RecipientOutcome[] = [];
    const byId = new Map(batch.recipients.map((r) => [r.id, r]));
    for (const [id, v] of verdicts) {
      const r = byId.get(id);
      if (!r) continue;
      let outcome: Outcome;
      if (v.kind === 'delivered') outcome = { kind: 'delivered', reply: v.reply };
      else if (v.kind === 'failed') outcome = { kind: 'failed', reply: v.reply };
      else if (v.connectionLevel) {
        // The destination's backoff, not the recipient's schedule, decides the next try (spec: 421 row).
        const until = destinationFailed(prev, batch.destination, now, '', this.retry).backoffUntil;
        outcome = { kind: 'deferred', reply: v.reply, nextAttemptAt: until, countAttempt: false };
      } else {
        outcome = { kind: 'deferred', reply: v.reply, nextAttemptAt: now + retryDelay(r.attempts + 1, this.retry, this.random), countAttempt: true };
      }
      outcomes.push({ recipientId: id, outcome });
      const status = v.kind === 'delivered' ? 'sent' : v.kind === 'failed' ? 'bounced' : 'deferred';
      const reply = v.reply;
      this.deps.log.info({
        event: 'delivery', queue_id: batch.message.id, from: batch.message.sender, to: r.address, orcpt: r.orcpt,
        relay: reply.host ?? 'none', delay: (now - batch.message.receivedAt) / 1000,
        attempts: outcome.kind === 'deferred' && !outcome.countAttempt ? r.attempts : r.attempts + 1,
        dsn: reply.enhanced, status, reply: `${reply.code}${reply.enhanced ? ` ${reply.enhanced}` : ''} ${reply.text}`,
        command: reply.command, possible_duplicate: v.kind === 'deferred' && v.possibleDuplicate ? true : undefined,
      }, `${batch.message.id}: to=<${r.address}> status=${status}`);
      this.deps.onOutcome?.(status, batch.destination, now - batch.message.receivedAt);
    }
    await this.deps.store.recordOutcomes(outcomes, now);
  }

  /** A connection-level failure: backoff for the destination, and its waiting batches wait for it without connecting. */
  private async destinationDown(d: DestState, why: LastReply): Promise<void> {
    const { store, clock, log } = this.deps;
    const now = clock();
    const current = await store.getDestination(d.key);
    // Fix (H): connections opened together (the first wave, up to the per-destination cap) all fail together;
    // a backoff already in force was set by one of them, and each further failure of that wave must not double
    // it again (that jumped a 1 m backoff straight to the 1 h cap). Gate lets no connection start during a
    // backoff, so a failure seen while one is in force always belongs to a connection started before it.
    const inForce = current !== undefined && current.health === 'backoff' && current.backoffUntil > now;
    const row = inForce ? current : destinationFailed(current, d.key, now, `${why.code} ${why.text}`, this.retry);
    d.health = row;
    if (!inForce) {
      await store.putDestination(row);
      // In slices: a million waiting rows must not hold the queue thread (and every 250) for seconds.
      for (let i = 0; i < 1000; i++) if ((await store.parkDestination(d.key, row.backoffUntil, PARK_SLICE)) < PARK_SLICE) break;
      log.warn({ event: 'destination_backoff', destination: d.key, until: new Date(row.backoffUntil).toISOString(), failures: row.consecutiveFailures, reason: row.lastError },
        `destination ${d.key} in backoff for ${Math.round(row.backoffMs / 1000)}s`);
    }
    d.probing = false;
    const waiting = d.queue.splice(0);
    // Fix (H): one commit for every waiting batch, not one per batch (thousands of fsyncs per failed probe).
    await this.deferBatches(waiting, row.backoffUntil, { code: 451, enhanced: '4.4.1', text: `delivery temporarily suspended: ${why.text}` }, why.host);
  }

  private async deferBatches(batches: readonly Batch[], until: number, reply: LastReply, host?: string): Promise<void> {
    const r: LastReply = host ? { ...reply, host } : reply;
    const outcomes = batches.flatMap((b) => b.recipients.map((x) => ({ recipientId: x.id, outcome: { kind: 'deferred', reply: x.lastReply ?? r, nextAttemptAt: until, countAttempt: false } as const })));
    await this.deps.store.recordOutcomes(outcomes, this.deps.clock());
  }

  private async deferBatch(b: Batch, until: number, reply: LastReply, host?: string): Promise<void> {
    await this.deferBatches([b], until, reply, host);
  }
}

/**
 * scheduler/qmgr — the queue manager: claims due recipients, groups them by
 * message and destination, asks the DestinationGate for a connection slot,
 * runs deliveries on the transports and applies the outcomes.
 *
 * It holds no state another node would need to agree with: the connection
 * count, the probe and the rate of a destination are the gate's (shared by
 * every node on the queue's database); what lives here is this node's own
 * work — the batches it claimed and the connections it runs.
 *
 * What keeps invariant I5 (no storms) true: a destination in backoff is not
 * claimed from at all (the claim query skips it); when its backoff ends the
 * gate grants exactly one probe, cluster-wide, and no other slot until the
 * probe's result is known. A connection-level failure moves the
 * destination's row on by compare-and-set (one backoff step per failure
 * wave, whichever node saw it) and defers every waiting batch of that
 * destination to the end of its backoff without connecting, and without
 * spending the recipients' own retry steps. Work that cannot get a slot is
 * given back to the queue (unclaimed), for whichever node holds one.
 *
 * Memory is bounded by what is claimed (at most a few batches per free
 * connection), never by the queue's size. The clock is injected; `runOnce`
 * does one whole pass and waits for its deliveries, for tests.
 *
 * A destination is the MX host set its domains resolve to (scheduler/
 * destination-map, docs/decisions/0004): recipients are queued under their
 * domains and mapped here when picked, so every domain of a host set shares
 * one gate entry, one probe and one pool of connections. The cap asked of
 * the gate is the destination's adaptive limit (destination/politeness, fed by
 * destination/feedback): it shrinks when the remote says "too many
 * connections" while others of ours work (a throttle: no backoff), and a
 * learned recipient limit and the reply rules in force apply to every batch.
 *
 * Reports (DSNs), expiry and delay warnings are driven by queue state in
 * sweeps (scheduler/sweeps), so a crash loses none of them.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { durationMs, parseRate } from '../config/units.js';
import type { MxHostSet } from '../delivery/resolve.js';
import type { BatchResult, OutboundBatch, RecipientVerdict, Transport } from '../delivery/types.js';
import { HalcyonError } from '../errors.js';
import type { Grant } from '../queue/destination-gate.js';
import type { DestinationRow, LastReply, RecipientOutcome } from '../queue/model.js';
import type { SuppressionSettings } from '../queue/suppression.js';
import { failSuppressed } from './suppressed.js';
import type { Queue } from '../queue/store.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import { shippedClassifier } from '../config/bounce-rules-file.js';
import { groupBatches, type Batch } from './batches.js';
import { DestinationMap } from '../destination/map.js';
import { Feedback } from '../destination/feedback.js';
import { Politeness } from '../destination/politeness.js';
import { destinationFailed, destinationRecovered, type BackoffSettings } from '../destination/backoff.js';
import { retryDelay, type RetrySettings } from './retry.js';
import { deliveryLine, outcomeOf } from './outcome.js';
import { Sweeps, type SweepDeps } from './sweeps.js';

export interface QmgrDeps {
  readonly queue: Queue;
  readonly smtp: Transport;
  readonly local: Transport;
  /** The configuration in force, read at use time (config/live). */
  readonly config: () => Config;
  readonly log: Logger;
  readonly clock: () => number;
  readonly random?: () => number;
  /** This node's id (config node_id): owns its leases and slots. */
  readonly node: string;
  /**
   * The queue is shared with other nodes: a connection is not kept idle for reuse past its slot (it would
   * count against the destination's cap without holding a slot). One node alone keeps them, as its next
   * slots reuse them first.
   */
  readonly shared?: boolean;
  readonly sweeps: Omit<SweepDeps, 'messages' | 'recipients' | 'log' | 'node' | 'leaseMs' | 'classify'>;
  readonly onOutcome?: (status: 'sent' | 'deferred' | 'bounced' | 'expired' | 'suppressed', destination: string, latencyMs: number, cls: BounceClass, reply: LastReply, address: string) => void;
  /** The bounce classifier in force (smtp/bounce-rules); unset → the shipped rules alone. */
  readonly classify?: (r: LastReply) => BounceClass;
  /** A domain's MX host names (delivery/resolve); unset → destinations stay domains. */
  readonly mxHostSet?: (domain: string) => Promise<MxHostSet>;
  /** True while the queue's storage is failed or unavailable (queue/health): no pass claims anything meanwhile. */
  readonly queueDown?: () => boolean;
}

/** A batch as claimed here: its recipients are leased to this node until leaseUntil. */
interface Claimed extends Batch {
  leaseUntil: number;
}

/** A slot the gate granted, as a worker holds it. */
interface Slot {
  readonly id: number;
  readonly probe: boolean;
  /** The row's generation and the row itself when the slot was granted: the compare-and-set base. */
  readonly generation: number;
  readonly row: DestinationRow | undefined;
  until: number;
}

/** This node's work for one destination. */
interface DestState {
  /** The gate key: an MX host set ("mx:a,b"), a route, "local:…", or a domain. */
  readonly key: string;
  /** The keys its recipients are queued under (domains) seen here: excluded and parked together. */
  readonly queued: Set<string>;
  readonly queue: Claimed[];
  /** Connections (slots) this node runs for the destination. */
  workers: number;
  /** Sessions that worked so far (monotonic): a timeout is a throttle only if others worked meanwhile. */
  successes: number;
  /** This node holds the destination's probe. */
  probing: boolean;
  /** An acquire is on its way to the gate. */
  asking: boolean;
  /** The gate said the slots are taken (or the rate spent) until then: no claims, no asking before. */
  waitUntil: number;
}

const isLocal = (destination: string): boolean => destination.startsWith('local:');

/** Least real time between two passes: a burst of new mail is claimed in one pass (costs ≤ 10 ms of latency). */
const PASS_GAP_MS = 10;

/** Rows parked per queue request when a destination goes into backoff. */
const PARK_SLICE = 5_000;

/**
 * How often (in clock time) leases are checked and the expiry and delay sweeps run: every 30 s, or every
 * half lease when the lease is shorter, so a dead node's recipients come back about one lease after it died.
 */
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
  private readonly retry: RetrySettings & BackoffSettings;
  private readonly random: () => number;
  private readonly sweeps: Sweeps;
  private readonly rate: { count: number; perMs: number } | undefined;
  readonly stats = { connectionsStarted: 0, batches: 0, passes: 0, throttled: 0 };
  /** Queued key (domain) → destination (MX host set); see docs/decisions/0004. */
  readonly destinations: DestinationMap;
  /** Adaptive concurrency, learned limits and reply rules per destination (this node's view; see politeness.ts). */
  readonly politeness: Politeness;
  private readonly feedback: Feedback;
  /** The one classifier every outcome of this scheduler is labelled by. */
  private readonly classify: (r: LastReply) => BounceClass;

  constructor(private readonly deps: QmgrDeps) {
    this.classify = deps.classify ?? ((r) => shippedClassifier().classify(r));
    const d = deps.config().delivery;
    this.retry = {
      retryInitialMs: durationMs(d.retry_initial), retryMaxMs: durationMs(d.retry_max),
      backoffMs: durationMs(d.destination_backoff), backoffMaxMs: durationMs(d.destination_backoff_max),
    };
    this.random = deps.random ?? Math.random;
    this.rate = d.destination_rate ? parseRate(d.destination_rate) : undefined;
    this.destinations = new DestinationMap({
      mxHostSet: deps.mxHostSet, clock: deps.clock,
      settings: () => ({ by: deps.config().delivery.destination_by, ttlMs: durationMs(deps.config().delivery.destination_cache_ttl) }),
    });
    this.politeness = new Politeness(deps.config, deps.clock);
    this.feedback = new Feedback(this.politeness, deps.log);
    this.sweeps = new Sweeps({
      ...deps.sweeps, messages: deps.queue.messages, recipients: deps.queue.recipients, log: deps.log, node: deps.node,
      leaseMs: durationMs(d.lease), classify: this.classify,
    });
  }

  private suppression(): SuppressionSettings {
    const s = this.deps.config().suppression;
    return { enabled: s.enabled, ttlMs: durationMs(s.ttl) };
  }

  private get leaseMs(): number {
    return durationMs(this.deps.config().delivery.lease);
  }

  /**
   * On start this node's leases and slots from before are given back (their workers died with the last
   * process). Another node's are left alone: they come back when their lease runs out, if that node is dead.
   */
  async start(): Promise<void> {
    const now = this.deps.clock();
    // On a full disk these writes can fail; lease expiry (housekeeping) then returns those recipients instead.
    const [n] = await Promise.all([
      this.deps.queue.recipients.releaseNodeLeases(this.deps.node, now),
      this.deps.queue.gate.releaseNodeSlots(this.deps.node),
    ]).catch((err: unknown): [number, unknown] => {
      this.deps.log.warn({ event: 'recover_inflight_failed', err: (err as Error).message }, 'could not release recipients in flight at the last stop; their leases will expire');
      return [0, undefined];
    });
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
    this.running = this.pass().catch((err: unknown) => this.queueError(err, 'queue manager pass failed'));
    await this.running;
    this.running = undefined;
    if (this.stopped) return;
    if (this.again) {
      this.again = false;
      this.scheduleSoon();
      return;
    }
    const scan = this.scanMs();
    const next = await this.deps.queue.recipients.nextDueAt().catch(() => undefined);
    // A poke while we asked has scheduled the next pass already; a second timer would run two loops.
    if (this.soon || this.stopped) return;
    const now = this.deps.clock();
    // A due time in the past means it is due but not claimable now (held, its destination busy): wait a scan.
    const wait = next === undefined || next <= now ? scan : Math.min(scan, next - now);
    this.timer = setTimeout(() => void this.loop(), wait);
    this.timer.unref?.();
  }

  private scanMs(): number {
    return durationMs(this.deps.config().delivery.queue_scan_interval);
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
    for (let i = 0; i < 100; i++) if (this.removed(await this.deps.queue.recipients.removeCompleted(1000)).length < 1000) break;
  }

  /** The last line of a message's story (`grep QUEUEID`): every recipient final, every report sent, the message gone. */
  private removed(ids: readonly string[]): readonly string[] {
    for (const id of ids) this.deps.log.info({ event: 'removed', queue_id: id }, `${id}: removed`);
    return ids;
  }

  /** Connections this node has open, per destination, for metrics. */
  connections(): Map<string, number> {
    return new Map([...this.dests.values()].filter((d) => d.workers > 0).map((d) => [d.key, d.workers]));
  }

  private async pass(): Promise<void> {
    const { queue, clock } = this.deps;
    // A damaged or unreachable queue is not read for work: deliveries in progress finish, nothing new is
    // claimed. The leases they hold expire as usual if their outcomes cannot be recorded.
    if (this.deps.queueDown?.()) return;
    this.stats.passes++;
    const now = clock();
    // Lease recovery and the expiry/delay sweeps look at old rows only; once per interval of (injected) time is enough.
    const housekeeping = now - this.lastHousekeeping >= Math.min(HOUSEKEEPING_MS, this.leaseMs / 2);
    if (housekeeping) this.lastHousekeeping = now;
    // Issued together so the queue thread answers them in one commit, not one commit each.
    await Promise.all([
      housekeeping ? queue.recipients.releaseExpiredLeases(now) : undefined,
      housekeeping ? queue.gate.releaseExpiredSlots(now) : undefined,
      housekeeping ? queue.suppressions.purgeSuppressions(now) : undefined,
      this.sweeps.run(now, housekeeping),
      this.dispatch(now),
      queue.recipients.removeCompleted(1000).then((ids) => this.removed(ids)),
    ]);
  }

  private dest(key: string): DestState {
    let d = this.dests.get(key);
    if (!d) {
      d = { key, queued: new Set(), queue: [], workers: 0, successes: 0, probing: false, asking: false, waitUntil: -Infinity };
      this.dests.set(key, d);
    }
    return d;
  }

  /** Puts what this node learned about a destination on the gate's row, for every node (and the next start). */
  private async share(key: string): Promise<void> {
    const limits = this.politeness.shared(key);
    if (limits) await this.deps.queue.gate.putLimits(key, limits, this.deps.clock()).catch((err: unknown) => {
      this.deps.log.warn({ event: 'qmgr_error', destination: key, err: (err as Error).message }, 'could not share learned limits');
    });
  }

  /** Queued keys (domains) of a destination: those seen here and those the map knows. */
  private queuedKeysOf(d: DestState): string[] {
    return [...new Set([d.key, ...d.queued, ...this.destinations.domainsOf(d.key)])];
  }

  private async dispatch(now: number): Promise<void> {
    const cfg = this.deps.config().delivery;
    for (const d of this.dests.values()) {
      if (d.queue.length === 0 && d.workers === 0 && !d.asking && d.waitUntil <= now) this.dests.delete(d.key);
    }
    const free = cfg.max_connections - this.active;
    if (free <= 0) return;
    // A destination with work waiting here, in a probe, told to wait or suspended by a rule takes no more claims
    // until that changes; the queue knows recipients by their queued keys (domains), so those are excluded.
    const known = this.destinations.known();
    const held = [...this.dests.values()].filter((d) => d.queue.length > 0 || d.probing || d.asking || d.waitUntil > now);
    const exclude = [...new Set([
      ...held.flatMap((d) => this.queuedKeysOf(d)),
      ...[...known].filter(([, k]) => (this.politeness.suspendedUntil(k) ?? 0) > now).map(([q]) => q),
    ])];
    const leaseUntil = now + this.leaseMs;
    const claimed = await this.deps.queue.recipients.claimDue({
      now, limit: Math.min(2000, free * cfg.max_recipients_per_transaction), owner: this.deps.node, leaseUntil, excludeDestinations: exclude,
    });
    // Suppressed addresses fail here, before any slot or connection: one commit, and one DSN per message.
    const rows = this.deps.config().suppression.enabled ? await failSuppressed(claimed, now, {
      queue: this.deps.queue, node: this.deps.node, log: this.deps.log, onOutcome: this.deps.onOutcome, onError: (err, what) => this.queueError(err, what),
    }) : claimed;
    // Queued keys → destinations (one MX question per domain not known yet, asked together).
    const gateOf = await this.destinations.keysFor(rows.map((r) => r.destination));
    for (const b of groupBatches(rows, cfg.max_recipients_per_transaction)) {
      const d = this.dest(gateOf.get(b.destination) ?? b.destination);
      d.queued.add(b.destination);
      d.queue.push({ ...b, destination: d.key, leaseUntil });
    }
    // Every destination with work waiting here (new, or left when an earlier ask failed) asks for its slots.
    await Promise.all([...this.dests.values()].filter((d) => d.queue.length > 0).map((d) => this.fill(d)));
  }

  /**
   * `fill` from outside a pass (a worker's end): when the gate cannot be asked (the queue unreachable), the
   * batches stay here and the next pass asks again. Never an unhandled rejection: that would end the process.
   */
  private refill(d: DestState): void {
    this.fill(d).catch((err: unknown) => this.queueError(err, 'could not ask for connection slots', d.key));
  }

  /**
   * A queue call failed in the scheduler's own work. An unreachable queue was logged once, by the app, when
   * it became so (queue/health): each call that fails meanwhile is logged at debug only, not once per batch.
   */
  private queueError(err: unknown, what: string, destination?: string): void {
    const fields = { event: 'qmgr_error', ...(destination !== undefined ? { destination } : {}), err: (err as Error).message };
    if (err instanceof HalcyonError && err.code === 'HAL_ERR_QUEUE_UNAVAILABLE') this.deps.log.debug(fields, what);
    else this.deps.log.error(fields, what);
  }

  /**
   * Asks the gate for as many slots as the destination's waiting batches can use (all asked together: one
   * queue turn) and starts a connection on each. A probe is granted alone; what cannot get a slot waits.
   */
  private async fill(d: DestState): Promise<void> {
    const cfg = this.deps.config().delivery;
    if (d.asking || d.probing) return;
    const now = this.deps.clock();
    const suspendedUntil = this.politeness.suspendedUntil(d.key);
    if (suspendedUntil !== undefined && suspendedUntil > now) {
      // A suspend rule is in force: the batches wait for its end in the queue, without asking the gate.
      await this.waitForGate(d, { kind: 'wait', reason: 'suspended', until: suspendedUntil }, now);
      return;
    }
    // The adaptive limit (≤ the configured cap, lowered by rules) is the cap the gate enforces.
    const limit = this.politeness.connectionLimit(d.key);
    const want = Math.min(d.queue.length, limit - d.workers, cfg.max_connections - this.active);
    if (want <= 0) return;
    d.asking = true;
    const until = now + this.leaseMs;
    let grants: Grant[];
    try {
      grants = await Promise.all(Array.from({ length: want }, () => this.deps.queue.gate.acquire({
        destination: d.key, node: this.deps.node, now, leaseUntil: until, maxConnections: limit,
      })));
    } finally {
      d.asking = false;
    }
    // What other nodes learned about the destination (on the gate's row) applies here before any batch goes.
    for (const g of grants) if (g.kind !== 'wait') this.politeness.absorb(d.key, g.row?.limits);
    let wait: Extract<Grant, { kind: 'wait' }> | undefined;
    for (const g of grants) {
      if (g.kind === 'wait') wait ??= g;
      else this.startWorker(d, { id: g.slot, probe: g.kind === 'probe', generation: g.generation, row: g.row, until });
    }
    if (wait && d.workers === 0) await this.waitForGate(d, wait, now);
  }

  /** No slot for this destination here: its batches go back to the queue, for a node that has one (or for later). */
  private async waitForGate(d: DestState, wait: Extract<Grant, { kind: 'wait' }>, now: number): Promise<void> {
    const held = wait.reason === 'backoff' || wait.reason === 'suspended';
    // Backoff: due when it ends (the claim query skips the destination till then, and sees an administrator's
    // reset at once). Full or probing elsewhere: due now for whoever has a slot; this node asks again after a scan.
    if (!held) d.waitUntil = Math.min(wait.until, now + this.scanMs());
    const batches = d.queue.splice(0);
    const ids = batches.flatMap((b) => b.recipients.map((r) => r.id));
    if (ids.length > 0) await this.deps.queue.recipients.unclaim(ids, this.deps.node, held ? wait.until : now);
  }

  private startWorker(d: DestState, slot: Slot): void {
    d.workers++;
    this.active++;
    if (slot.probe) d.probing = true;
    this.stats.connectionsStarted++;
    const w: Promise<void> = this.worker(d, slot)
      .catch((err: unknown) => this.queueError(err, 'delivery worker failed', d.key))
      .finally(() => {
        d.workers--;
        this.active--;
        if (slot.probe) d.probing = false;
        this.workers.delete(w);
        // Batches left behind (a worker that stopped early) get a connection of their own.
        if (d.queue.length > 0) this.refill(d);
      });
    this.workers.add(w);
  }

  /** One connection's worth of work: takes batches of one destination until none is left or the destination fails. */
  private async worker(d: DestState, slot: Slot): Promise<void> {
    const { queue } = this.deps;
    try {
      let s = slot;
      for (;;) {
        const batch = d.queue.shift();
        if (!batch) return;
        const now = this.deps.clock();
        if (!(await this.keepLeases(s, batch, now))) continue;
        const rate = this.politeness.rate(d.key) ?? this.rate;
        if (rate) {
          const t = await queue.gate.takeToken(d.key, now, rate);
          if (!t.ok) {
            // Over the shared rate: this batch and the rest wait for the next token, in the queue.
            d.waitUntil = t.until;
            const ids = [batch, ...d.queue.splice(0)].flatMap((b) => b.recipients.map((r) => r.id));
            await queue.recipients.unclaim(ids, this.deps.node, t.until);
            return;
          }
        }
        const result = await this.deliverBatch(batch, s);
        const learned = this.feedback.learn(d, result);
        if (result.destinationFailure && this.feedback.wasThrottled(result.outbound)) {
          // Others are working: the remote wants fewer of us, not none. Fewer connections, no backoff.
          this.stats.throttled++;
          this.feedback.throttle(d, result.destinationFailure);
          await this.share(d.key);
          return;
        }
        if (learned) await this.share(d.key);
        if (result.destinationFailure) {
          await this.destinationDown(d, s, result.destinationFailure);
          return;
        }
        if (s.probe || (s.row !== undefined && s.row.health !== 'ok')) {
          s = await this.destinationUp(d, s);
          d.probing = false;
          // The probe went through: the others waiting here may have their connections now.
          this.refill(d);
        }
      }
    } finally {
      // One connection per slot: the one this worker leaves idle (or one like it) goes with its slot, and is
      // closed before the slot is given back. Not all of them: the others belong to this node's other workers.
      if (this.deps.shared) await this.transportOf(d.key).closeIdle?.(d.key, 1).catch(() => undefined);
      await queue.gate.releaseSlot(slot.id).catch(() => undefined);
    }
  }

  /**
   * A worker can hold a slot, and batches can wait here, longer than a lease: past half of it, both are
   * renewed. A batch whose recipients were taken over meanwhile (this node was thought dead) is dropped.
   */
  private async keepLeases(slot: Slot, batch: Claimed, now: number): Promise<boolean> {
    const half = this.leaseMs / 2;
    if (now >= slot.until - half && await this.deps.queue.gate.renewSlot(slot.id, now + this.leaseMs)) slot.until = now + this.leaseMs;
    if (now < batch.leaseUntil - half) return true;
    const kept = new Set(await this.deps.queue.recipients.renewLeases(batch.recipients.map((r) => r.id), this.deps.node, now + this.leaseMs));
    batch.leaseUntil = now + this.leaseMs;
    batch.recipients.splice(0, batch.recipients.length, ...batch.recipients.filter((r) => kept.has(r.id)));
    return batch.recipients.length > 0;
  }

  /** A connection went through while the row was not healthy (the probe, say): the destination recovers, once. */
  private async destinationUp(d: DestState, slot: Slot): Promise<Slot> {
    const r = await this.deps.queue.gate.transition(d.key, slot.generation, destinationRecovered(slot.row, d.key, this.deps.clock()));
    if (r.applied) this.deps.log.info({ event: 'destination_recovered', destination: d.key }, 'destination recovered');
    // From here on this connection is an ordinary one, on the row as it now is.
    return { ...slot, probe: false, generation: r.row?.generation ?? slot.generation, row: r.row };
  }

  private transportOf(destination: string): Transport {
    return isLocal(destination) ? this.deps.local : this.deps.smtp;
  }

  private async deliverBatch(batch: Claimed, slot: Slot): Promise<BatchResult & { outbound?: OutboundBatch }> {
    const { messages } = this.deps.queue;
    // Asked together, answered in one queue turn.
    const [message, body] = await Promise.all([messages.getMessage(batch.messageId), messages.getBody(batch.messageId).catch(() => undefined)]);
    if (!message || !body) {
      // Deleted while claimed (queue delete): nothing to do.
      return {};
    }
    const d = this.dests.get(batch.destination);
    const outbound: OutboundBatch = {
      destination: batch.destination, domain: batch.domain, message, body, recipients: batch.recipients, maxRecipients: this.politeness.recipientLimit(batch.destination),
    };
    if (d) this.feedback.started(outbound, d);
    const transport = this.transportOf(batch.destination);
    this.stats.batches++;
    const record = (v: ReadonlyMap<number, RecipientVerdict>) => this.record(outbound, v, slot.row);
    try {
      return { ...(await transport.deliver(outbound, record)), outbound };
    } catch (err) {
      // A transport bug must not strand recipients in flight: they are deferred and the lease is cleared.
      this.deps.log.error({ event: 'transport_error', queue_id: message.id, destination: batch.destination, err: (err as Error).stack }, 'transport failed');
      const reply: LastReply = { code: 451, enhanced: '4.3.0', text: `internal error: ${(err as Error).message}` };
      const left = batch.recipients.map((r) => [r.id, { kind: 'deferred', reply } as RecipientVerdict] as const);
      await this.record(outbound, new Map(left), slot.row).catch(() => undefined);
      return {};
    }
  }

  /** Turns verdicts into durable outcomes and log lines. Called by transports after each transaction. */
  private async record(batch: OutboundBatch, verdicts: ReadonlyMap<number, RecipientVerdict>, prev: DestinationRow | undefined): Promise<void> {
    const now = this.deps.clock();
    const outcomes: RecipientOutcome[] = [];
    const byId = new Map(batch.recipients.map((r) => [r.id, r]));
    // One rule trigger per reply (a 421 that defers a hundred recipients triggers once).
    const judged = new Map<LastReply, ReturnType<Politeness['onReply']>>();
    for (const [id, given] of verdicts) {
      const r = byId.get(id);
      if (!r) continue;
      // Every reply that is not a delivery is judged by the rules (a suspend may follow a 5xx too).
      if (given.kind !== 'delivered' && !judged.has(given.reply)) judged.set(given.reply, this.feedback.ruleFor(batch, given.reply));
      const { outcome, status, verdict } = outcomeOf(given, r, {
        now, bounceRule: given.kind !== 'delivered' && judged.get(given.reply)?.action === 'bounce',
        throttled: () => this.feedback.isThrottle(batch, given.reply, this.dests.get(batch.destination)),
        backoffUntil: () => destinationFailed(prev, batch.destination, now, '', this.retry).backoffUntil,
        retryAt: (attempts) => now + retryDelay(attempts, this.retry, this.random),
        classify: this.classify,
        suppression: this.suppression(),
      });
      outcomes.push({ recipientId: id, outcome });
      const line = deliveryLine(batch, r, verdict, outcome, status, now);
      this.deps.log.info(line.fields, line.msg);
      this.deps.onOutcome?.(status, batch.destination, now - batch.message.receivedAt, outcome.reply.class ?? this.classify(outcome.reply), outcome.reply, r.address);
    }
    await this.deps.queue.recipients.recordOutcomes(outcomes, now, this.deps.node);
    // A suspend or set rule now in force goes on the gate's row: every node (and the next start) honours it.
    if ([...judged.values()].some((rule) => rule !== undefined && rule.action !== 'bounce')) await this.share(batch.destination);
  }

  /**
   * A connection-level failure: the destination's row moves into (or further into) backoff by compare-and-set
   * on the generation this connection was granted under. Connections opened together (the first wave, up to
   * the cap, on any node) all fail together: the first failure moves the row on, the others find it moved and
   * change nothing (that used to jump a 1 m backoff straight to the 1 h cap). The waiting batches wait for the
   * backoff without connecting.
   */
  private async destinationDown(d: DestState, slot: Slot, why: LastReply): Promise<void> {
    const { queue, clock, log } = this.deps;
    const now = clock();
    const next = destinationFailed(slot.row, d.key, now, `${why.code} ${why.text}`, this.retry);
    const r = await queue.gate.transition(d.key, slot.generation, next);
    const row = r.row;
    if (r.applied && row) {
      // In slices: a million waiting rows must not hold the queue thread (and every 250) for seconds.
      // Every domain of the host set waits with it (their recipients are queued under the domains).
      for (const q of this.queuedKeysOf(d)) {
        for (let i = 0; i < 1000; i++) if ((await queue.recipients.parkDestination(q, row.backoffUntil, PARK_SLICE)) < PARK_SLICE) break;
      }
      log.warn({ event: 'destination_backoff', destination: d.key, until: new Date(row.backoffUntil).toISOString(), failures: row.consecutiveFailures, reason: row.lastError },
        `destination ${d.key} in backoff for ${Math.round(row.backoffMs / 1000)}s`);
    }
    // The row moved on to healthy meanwhile (another node's probe went through): this failure is old news.
    if (!row || row.health === 'ok') return;
    const waiting = d.queue.splice(0);
    // One commit for every waiting batch, not one per batch (thousands of fsyncs per failed probe).
    // Halcyon's words, not the host's: these batches were never tried (ours, and no host said it).
    const after = `${why.host ? `${why.host}: ` : ''}${why.ours ? '' : `${why.code}${why.enhanced ? ` ${why.enhanced}` : ''} `}${why.text}`;
    await this.deferBatches(waiting, row.backoffUntil, { code: 451, enhanced: '4.4.1', text: `destination in backoff after ${after}`, ours: true });
  }

  private async deferBatches(batches: readonly Batch[], until: number, reply: LastReply): Promise<void> {
    const classified = (r: LastReply): LastReply => ({ ...r, class: this.classify(r) });
    const ours = classified(reply);
    const outcomes = batches.flatMap((b) => b.recipients.map((x) => ({ recipientId: x.id, outcome: { kind: 'deferred', reply: x.lastReply ? classified(x.lastReply) : ours, nextAttemptAt: until, countAttempt: false } as const })));
    await this.deps.queue.recipients.recordOutcomes(outcomes, this.deps.clock(), this.deps.node);
  }
}

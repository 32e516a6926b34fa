/**
 * scheduler/qmgr — the queue manager: claims due recipients, groups them into
 * batches (one message, one destination), asks destination/service for
 * connection slots, runs one worker per slot on the transports, and hands
 * the verdicts to scheduler/record.
 *
 * Everything about a destination — which one a route key goes to, whether a
 * connection may open, how many, its rate, what a failure or a throttle
 * means, its backoff, what it learned, the reply rules — is
 * destination/service's; read it for "why is this destination not getting
 * mail?". What lives here is this node's own work: the batches it claimed
 * and the connections it runs. It holds no state another node would need to
 * agree with.
 *
 * What keeps invariant I5 (no storms) true here: a destination whose work
 * waits here, in a probe or told to wait is not claimed from again; work
 * that cannot get a slot is given back to the queue (unclaimed), for
 * whichever node holds one, or till the backoff ends; a failed destination's
 * waiting batches are deferred to its backoff end without connecting, and
 * without spending the recipients' own retry steps.
 *
 * Memory is bounded by what is claimed (at most a few batches per free
 * connection), never by the queue's size. The clock is injected; `runOnce`
 * does one whole pass and waits for its deliveries, for tests.
 *
 * Reports (DSNs), expiry and delay warnings are driven by queue state in
 * sweeps (scheduler/sweeps), so a crash loses none of them.
 */
import { IDEMPOTENCY_TTL_MS } from '../queue/idempotency.js';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import type { OutboundBatch, RecipientVerdict, Transport } from '../delivery/types.js';
import type { Destinations, DestinationWork, Slot, Wait } from '../destination/service.js';
import type { TenantWait } from '../destination/tenants.js';
import { giveBack } from './tenant-wait.js';
import { HalcyonError } from '../errors.js';
import type { LastReply } from '../queue/model.js';
import type { Queue } from '../queue/store.js';
import { groupBatches, type Batch } from './batches.js';
import type { DeliveryStatus } from './outcome.js';
import { Recorder, type Pending } from './record.js';
import { Sweeps, type SweepDeps } from './sweeps.js';
import { failSuppressed } from './suppressed.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import { shippedClassifier } from '../config/bounce-rules-file.js';

export interface QmgrDeps {
  readonly queue: Queue;
  /** Everything about destinations: the map, the gate, politeness, failure and backoff (destination/service). */
  readonly destinations: Destinations;
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
  readonly onOutcome?: (status: DeliveryStatus | 'expired' | 'suppressed', destination: string, latencyMs: number, cls: BounceClass, reply: LastReply, address: string) => void;
  /** The bounce classifier in force (smtp/bounce-rules); unset → the shipped rules alone. */
  readonly classify?: (r: LastReply) => BounceClass;
  /** True while the queue's storage is failed or unavailable (queue/health): no pass claims anything meanwhile. */
  readonly queueDown?: () => boolean;
}

/** A batch as claimed here: its recipients are leased to this node until leaseUntil. */
interface Claimed extends Batch {
  /** The destination (gate key) its route key goes to. */
  readonly destination: string;
  leaseUntil: number;
}

/** This node's work for one destination. */
interface DestState extends DestinationWork {
  /** The route keys its recipients are queued under (domains) seen here: excluded and parked together. */
  readonly routeKeys: Set<string>;
  readonly queue: Claimed[];
  workers: number;
  /** This node holds the destination's probe. */
  probing: boolean;
  /** An acquire is on its way to the gate. */
  asking: boolean;
  /** The gate said the slots are taken (or the rate spent) until then: no claims, no asking before. */
  waitUntil: number;
  /** Its last claim reached the fair share (more may be due): the next claim is asked for as its work here runs low. */
  capped: boolean;
}

const isLocal = (destination: string): boolean => destination.startsWith('local:');

/**
 * Most messages one destination takes per claim (queue/fair-claim: its due tenants in turns): two per connection
 * it may open, so its connections stay busy while a tenant queued behind another's backlog waits for about that many.
 */
export const fairShare = (maxConnectionsPerDestination: number): number => 2 * maxConnectionsPerDestination;

/** Least real time between two passes: a burst of new mail is claimed in one pass (costs ≤ 10 ms of latency). */
const PASS_GAP_MS = 10;

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
  /** Driven by hand (runOnce): a destination's fair share ran low and more may be due there. */
  private topUp = false;
  private lastHousekeeping = -Infinity;
  /** Real time (performance.now) the last pass started, and whether the next is already scheduled soon. */
  private lastPassAt = -Infinity;
  private soon = false;
  private readonly sweeps: Sweeps;
  private readonly recorder: Recorder;
  readonly stats = { connectionsStarted: 0, batches: 0, passes: 0 };

  constructor(private readonly deps: QmgrDeps) {
    const d = deps.config().delivery;
    const classify = deps.classify ?? ((r: LastReply) => shippedClassifier().classify(r));
    this.sweeps = new Sweeps({
      ...deps.sweeps, messages: deps.queue.messages, recipients: deps.queue.recipients, log: deps.log, node: deps.node,
      leaseMs: durationMs(d.lease), classify,
    });
    this.recorder = new Recorder({
      recipients: deps.queue.recipients, destinations: deps.destinations, log: deps.log, clock: deps.clock, node: deps.node,
      retry: { retryInitialMs: durationMs(d.retry_initial), retryMaxMs: durationMs(d.retry_max) }, random: deps.random ?? Math.random,
      ...(deps.onOutcome ? { onOutcome: deps.onOutcome } : {}),
      classify,
      suppression: () => ({ enabled: deps.config().suppression.enabled, ttlMs: durationMs(deps.config().suppression.ttl) }),
    });
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
      this.deps.destinations.releaseOwnSlots(),
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
    // A destination that took its fair share and ran low (the poke of a running scheduler): its next shares, and their deliveries.
    while (this.topUp && !this.deps.queueDown?.()) {
      this.topUp = false;
      await this.dispatch(this.deps.clock());
      await this.idle();
    }
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
    return new Map([...this.dests.values()].filter((d) => d.workers > 0).map((d) => [d.destination, d.workers]));
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
      housekeeping ? this.deps.destinations.housekeeping(now) : undefined,
      housekeeping ? queue.suppressions.purgeSuppressions(now) : undefined,
      // The injection API's idempotency keys answer for 24 h (queue/idempotency); older ones go, in slices.
      housekeeping ? queue.idempotency.expireIdempotency(now - IDEMPOTENCY_TTL_MS, 1000) : undefined,
      this.sweeps.run(now, housekeeping),
      this.dispatch(now),
      queue.recipients.removeCompleted(1000).then((ids) => this.removed(ids)),
    ]);
  }

  private dest(destination: string): DestState {
    let d = this.dests.get(destination);
    if (!d) {
      d = { destination, routeKeys: new Set(), queue: [], workers: 0, successes: 0, probing: false, asking: false, waitUntil: -Infinity, capped: false };
      this.dests.set(destination, d);
    }
    return d;
  }

  private async dispatch(now: number): Promise<void> {
    const cfg = this.deps.config().delivery;
    for (const d of this.dests.values()) {
      if (d.queue.length === 0 && d.workers === 0 && !d.asking && d.waitUntil <= now) this.dests.delete(d.destination);
    }
    const free = cfg.max_connections - this.active;
    if (free <= 0) return;
    // A destination with more work waiting here than connections to take it, in a probe, told to wait or suspended
    // by a rule takes no more claims until that changes; the queue knows recipients by their route keys (domains),
    // so those are excluded.
    const busy = [...this.dests.values()].filter((d) => d.queue.length > d.workers || d.probing || d.asking || d.waitUntil > now);
    const leaseUntil = now + this.leaseMs;
    // Fair tenants (docs/shaping.md): a destination takes at most a fair share of messages per claim, its tenants
    // in turns, so a tenant queued later waits for about one share of another's backlog, not for all of it.
    const share = fairShare(cfg.max_connections_per_destination);
    // Tenants held or over their rate are left out (and the weights given): destination/tenants.
    const tenants = this.deps.destinations.tenants;
    await tenants.refresh(now);
    const claimed = await this.deps.queue.recipients.claimDue({
      now, limit: Math.min(2000, free * cfg.max_recipients_per_transaction), owner: this.deps.node, leaseUntil,
      excludeDestinations: this.deps.destinations.excluded(busy, now), perDestination: share, ...tenants.claimFilter(now),
    });
    // Suppressed addresses fail here, before any slot or connection: one commit, and one DSN per message.
    const rows = this.deps.config().suppression.enabled ? await failSuppressed(claimed, now, {
      queue: this.deps.queue, node: this.deps.node, log: this.deps.log, onOutcome: this.deps.onOutcome, onError: (err, what) => this.queueError(err, what),
    }) : claimed;
    // Route keys → destinations (one MX question per domain not known yet, asked together).
    const destinationOf = await this.deps.destinations.destinationsOf(rows.map((r) => r.destination));
    const messagesOf = new Map<string, Set<string>>();
    for (const r of claimed) messagesOf.set(r.destination, (messagesOf.get(r.destination) ?? new Set()).add(r.messageId));
    for (const b of groupBatches(rows, cfg.max_recipients_per_transaction)) {
      const d = this.dest(destinationOf.get(b.routeKey) ?? b.routeKey);
      d.routeKeys.add(b.routeKey);
      d.queue.push({ ...b, destination: d.destination, leaseUntil });
      d.capped = (messagesOf.get(b.routeKey)?.size ?? 0) >= share;
    }
    // Every destination with work waiting here (new, or left when an earlier ask failed) asks for its slots.
    await Promise.all([...this.dests.values()].filter((d) => d.queue.length > 0).map((d) => this.fill(d)));
  }

  /**
   * `fill` from outside a pass (a worker's end): when the gate cannot be asked (the queue unreachable), the
   * batches stay here and the next pass asks again. Never an unhandled rejection: that would end the process.
   */
  private refill(d: DestState): void {
    this.fill(d).catch((err: unknown) => this.queueError(err, 'could not ask for connection slots', d.destination));
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

  /** Asks for as many slots as the destination's waiting batches can use and starts a connection on each; what cannot get one waits. */
  private async fill(d: DestState): Promise<void> {
    if (d.asking || d.probing) return;
    const now = this.deps.clock();
    const available = Math.min(d.queue.length, this.deps.config().delivery.max_connections - this.active);
    if (available <= 0) return;
    d.asking = true;
    let got: Awaited<ReturnType<Destinations['acquire']>>;
    try {
      got = await this.deps.destinations.acquire(d, available, now);
    } finally {
      d.asking = false;
    }
    for (const slot of got.slots) this.startWorker(d, slot);
    if (got.wait && d.workers === 0) await this.waitForGate(d, got.wait, now);
  }

  /** No slot for this destination here: its batches go back to the queue, for a node that has one (or for later). */
  private async waitForGate(d: DestState, wait: Wait, now: number): Promise<void> {
    const held = wait.reason === 'backoff' || wait.reason === 'suspended';
    // Backoff: due when it ends (the claim query skips the destination till then, and sees an administrator's
    // reset at once). Full or probing elsewhere: due now for whoever has a slot; this node asks again after a scan.
    if (!held) d.waitUntil = Math.min(wait.until, now + this.scanMs());
    const ids = d.queue.splice(0).flatMap((b) => b.recipients.map((r) => r.id));
    if (ids.length > 0) await this.deps.queue.recipients.unclaim(ids, this.deps.node, held ? wait.until : now);
  }

  private startWorker(d: DestState, slot: Slot): void {
    d.workers++;
    this.active++;
    if (slot.probe) d.probing = true;
    this.stats.connectionsStarted++;
    const w: Promise<void> = this.worker(d, slot)
      .catch((err: unknown) => this.queueError(err, 'delivery worker failed', d.destination))
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

  /** One connection's worth of work: takes batches of one destination until none is left or the destination says stop. */
  private async worker(d: DestState, slot: Slot): Promise<void> {
    const { destinations } = this.deps;
    try {
      let s = slot;
      for (;;) {
        const batch = d.queue.shift();
        if (!batch) return;
        // The fair share claimed for it runs low: the next one is claimed while this batch is delivered.
        if (d.capped && d.queue.length <= d.workers) {
          d.capped = false;
          if (this.stopped) this.topUp = true;
          else this.poke();
        }
        const now = this.deps.clock();
        await destinations.renew(s, now);
        if (!(await this.keepLeases(batch, now))) continue;
        // The batch's tenant held or over its rate: its batches here wait, the other tenants' go on.
        const tenantWait = await destinations.tenants.mayGo(batch.recipients[0]?.tenant, batch.routeKey, d.destination, now);
        if (tenantWait) {
          await this.tenantWaits(d, batch, tenantWait, now);
          continue;
        }
        const token = await destinations.takeToken(d.destination, now);
        if (!token.ok) {
          // Over the shared rate: this batch and the rest wait for the next token, in the queue.
          d.waitUntil = token.until;
          const ids = [batch, ...d.queue.splice(0)].flatMap((b) => b.recipients.map((r) => r.id));
          await this.deps.queue.recipients.unclaim(ids, this.deps.node, token.until);
          return;
        }
        const started = destinations.started(d);
        const { outbound, result, pending } = await this.deliverBatch(batch);
        const next = await destinations.afterBatch(d, s, result, started);
        if (next.kind === 'go') {
          // Connection-level deferrals without a destination failure (none by the transports' contract): their own retry.
          if (pending.size > 0) await this.recorder.settle(outbound, pending, undefined);
          if (next.slot !== s) {
            // The destination recovered on this connection (the probe went through): no probe any more.
            d.probing = false;
            // The probe went through: the others waiting here may have their connections now.
            this.refill(d);
          }
          s = next.slot;
          continue;
        }
        // Throttled (fewer connections), or failed with the row healthy again: due now. Failed: due at the
        // backoff end, with every batch waiting here (never tried: no attempt counted), in one commit.
        const until = next.kind === 'failed' ? next.until : undefined;
        const waiting = until !== undefined ? d.queue.splice(0) : [];
        await this.recorder.settle(outbound, pending, until ?? this.deps.clock(), waiting, next.kind === 'failed' ? next.reply : undefined);
        return;
      }
    } finally {
      // One connection per slot: the one this worker leaves idle (or one like it) goes with its slot, and is
      // closed before the slot is given back. Not all of them: the others belong to this node's other workers.
      if (this.deps.shared) await this.transportOf(d.destination).closeIdle?.(d.destination, 1).catch(() => undefined);
      await destinations.release(slot).catch(() => undefined);
    }
  }

  /** A tenant's batches here (this one and those of its tenant behind it) go back to the queue (scheduler/tenant-wait). */
  private async tenantWaits(d: DestState, batch: Claimed, wait: TenantWait, now: number): Promise<void> {
    const tenant = batch.recipients[0]?.tenant;
    const same = [batch, ...d.queue.filter((b) => b.recipients[0]?.tenant === tenant)];
    d.queue.splice(0, d.queue.length, ...d.queue.filter((b) => b.recipients[0]?.tenant !== tenant));
    await giveBack({ recipients: this.deps.queue.recipients, recorder: this.recorder, log: this.deps.log, node: this.deps.node }, d.destination, same, wait, now);
  }

  /**
   * Batches can wait here longer than a lease: past half of it, their leases are renewed. A batch whose
   * recipients were taken over meanwhile (this node was thought dead) is dropped.
   */
  private async keepLeases(batch: Claimed, now: number): Promise<boolean> {
    if (now < batch.leaseUntil - this.leaseMs / 2) return true;
    const kept = new Set(await this.deps.queue.recipients.renewLeases(batch.recipients.map((r) => r.id), this.deps.node, now + this.leaseMs));
    batch.leaseUntil = now + this.leaseMs;
    batch.recipients.splice(0, batch.recipients.length, ...batch.recipients.filter((r) => kept.has(r.id)));
    return batch.recipients.length > 0;
  }

  private transportOf(destination: string): Transport {
    return isLocal(destination) ? this.deps.local : this.deps.smtp;
  }

  /** Runs one batch on its transport; the verdicts are recorded as they come, connection-level deferrals kept on `pending`. */
  private async deliverBatch(batch: Claimed): Promise<{ outbound?: OutboundBatch; result: Awaited<ReturnType<Transport['deliver']>>; pending: Pending }> {
    const { messages } = this.deps.queue;
    const pending: Pending = new Map();
    // One request: the message and its body together.
    const got = await messages.getForDelivery(batch.messageId);
    // Deleted while claimed (queue delete): nothing to do.
    if (!got) return { result: {}, pending };
    const { message, body } = got;
    const outbound: OutboundBatch = {
      destination: batch.destination, domain: batch.domain, message, body, recipients: batch.recipients,
      maxRecipients: this.deps.destinations.recipientLimit(batch.destination),
    };
    this.stats.batches++;
    try {
      return { outbound, result: await this.transportOf(batch.destination).deliver(outbound, (v) => this.recorder.record(outbound, v, pending)), pending };
    } catch (err) {
      // A transport bug must not strand recipients in flight: they are deferred and the lease is cleared.
      this.deps.log.error({ event: 'transport_error', queue_id: message.id, destination: batch.destination, err: (err as Error).stack }, 'transport failed');
      const reply: LastReply = { code: 451, enhanced: '4.3.0', text: `internal error: ${(err as Error).message}` };
      const left = batch.recipients.map((r) => [r.id, { kind: 'deferred', reply } as RecipientVerdict] as const);
      pending.clear();
      await this.recorder.record(outbound, new Map(left), pending).catch(() => undefined);
      return { outbound, result: {}, pending };
    }
  }
}

/**
 * destination/service — the destination, in one place: where a recipient's
 * mail goes, whether and how hard it may be sent there now, and what each
 * delivery teaches about it. Read this file to answer "why is this
 * destination not getting mail?".
 *
 * Words. A recipient is queued under its **route key** (its domain, a
 * `route:…` or a `local:…` key, decided at RCPT time without DNS). A
 * **destination** is the set of hosts mail goes to: a route key maps to one
 * (`mx:a.example,b.example`, its MX host set: destination/map, key and
 * docs/decisions/0004), so every domain of a host set shares one backoff, one
 * probe, one connection cap. The gate's rows and slots are keyed by
 * destination.
 *
 * Why a destination gets no mail now — every reason, and where it is decided:
 * 1. **backoff** — a connection to it failed (`afterBatch` → `failed`): its
 *    gate row goes into backoff until T by compare-and-set (destination/
 *    backoff: destination_backoff, doubling per failed probe, capped at
 *    destination_backoff_max; one step per failure wave, whichever node saw
 *    it). Its recipients are parked until T and the claim skips it.
 * 2. **probe** — T has passed: the gate grants one probe, cluster-wide, and no
 *    other slot until the probe's result is known (`acquire` → wait
 *    'probing'). A connection that works ends the backoff (`recovered`).
 * 3. **suspended** — by an administrator (the row's health) or by a reply
 *    rule's `suspend` in force (destination/reply-rules, on the row for every
 *    node): nothing is claimed or asked for until it ends.
 * 4. **full** — its connections are at its cap, counted over every node by the
 *    gate: delivery.max_connections_per_destination, lowered by adaptive
 *    concurrency (destination/concurrency: "too many connections" while
 *    others of ours work is a **throttle** — fewer connections, no backoff),
 *    a learned ceiling, or a rule's `max_connections`.
 * 5. **rate** — its token bucket is empty (delivery.destination_rate, its
 *    provider preset's paced rate, the adaptive rate a `slow_down` rule cut,
 *    or a set rule's `rate`): `takeToken`, one bucket per scope.
 * 6. **provider** — a rule triggered through another MX set of its provider
 *    (destination/providers: rules and the adaptive rate act on the scope
 *    `provider:<name>`, kept on that key's gate row for every node) suspends
 *    or slows it too.
 * Not the destination's: a held message, a recipient's own retry time
 * (scheduler/retry), this node's delivery.max_connections, batches already
 * waiting here, a tenant's suspension or rate (destination/tenants: only
 * that tenant's mail waits). A transaction's recipient count is capped by the learned
 * recipient limit (I6, destination/learned-limits): fewer per transaction,
 * never none.
 *
 * Failure or throttle is read ONCE, from the batch result (`BatchResult.
 * throttle`, set by the transport from delivery/failure-policy); this file
 * only weighs it against this node's other sessions (a throttle needs others
 * working; alone it is a failing cohort and the destination backs off). The
 * backoff step is computed once, in `failed`; the recipients of the failed
 * connection and every batch waiting here are deferred to the row's backoff
 * end by the caller, with what `afterBatch` returns.
 *
 * Memory: this node's politeness records (destination/politeness) and its map
 * cache; what every node must agree on (health, backoff, learned limits and
 * rules in force, slots, tokens) is the gate's (queue/destination-gate).
 * `view` is read-only: a dashboard or `halcyon destinations` changes nothing.
 * A recipient verification probe (inbound/verifier) asks and reports here
 * like a one-connection delivery: token, slot, `afterBatch`.
 * It does not claim, batch or run workers (scheduler/qmgr), record outcomes
 * (scheduler/record) or open connections (delivery/).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { durationMs, parseRate } from '../config/units.js';
import { isTimeout } from '../delivery/failure-policy.js';
import type { MxHostSet } from '../delivery/resolve.js';
import type { BatchResult } from '../delivery/types.js';
import type { DestinationGate, Grant } from '../queue/destination-gate.js';
import type { DestinationLimits, DestinationRow, LastReply } from '../queue/model.js';
import type { RecipientQueue } from '../queue/recipient-queue.js';
import { destinationFailed, destinationRecovered, type BackoffSettings } from './backoff.js';
import { DestinationMap } from './map.js';
import { Politeness, type PolitenessView } from './politeness.js';
import type { Shaping } from './providers.js';
import { formatReply, type ReplyRule } from './reply-rules.js';
import { Tenants } from './tenants.js';

export interface DestinationsDeps {
  readonly gate: DestinationGate;
  /** Parks a route key's waiting recipients until a backoff ends. */
  readonly recipients: Pick<RecipientQueue, 'parkDestination'>;
  /** The configuration in force, read at use time (config/live). */
  readonly config: () => Config;
  readonly log: Logger;
  readonly clock: () => number;
  /** This node's id: owns its slots. */
  readonly node: string;
  /** The provider presets and rules in force (destination/providers); unset → made from `config`. */
  readonly shaping?: Shaping;
  /** A domain's MX host names (delivery/resolve); unset → destinations stay route keys. */
  readonly mxHostSet?: (domain: string) => Promise<MxHostSet>;
}

/** A connection slot the gate granted, as a worker holds it. */
export interface Slot {
  readonly id: number;
  readonly probe: boolean;
  /** The row's generation and the row itself when the slot was granted: the compare-and-set base. */
  readonly generation: number;
  readonly row: DestinationRow | undefined;
  until: number;
}

/** This node's work on one destination, as this service sees it (the scheduler keeps it). */
export interface DestinationWork {
  readonly destination: string;
  /** The route keys of the recipients claimed for it here. */
  readonly routeKeys: ReadonlySet<string>;
  /** Connections this node runs for it now. */
  readonly workers: number;
  /** Sessions that worked so far (monotonic): a timeout is a throttle only if others worked meanwhile. */
  successes: number;
}

export type Wait = Extract<Grant, { kind: 'wait' }>;

/** What a destination's delivery means for the worker that ran it. */
export type AfterBatch =
  /** Go on with the next batch, on this slot (its row as it now is). */
  | { readonly kind: 'go'; readonly slot: Slot }
  /** The remote asked for fewer connections while others of ours work: this connection ends, its recipients are due now. */
  | { readonly kind: 'throttled' }
  /**
   * The destination failed: this connection ends; its recipients and every batch waiting here wait until
   * `until` (the row's backoff end; undefined when the row is healthy again — another node's probe went
   * through — and they are due now). `reply`: what the waiting batches are told (Halcyon's words).
   */
  | { readonly kind: 'failed'; readonly until: number | undefined; readonly reply: LastReply };

/** What http/admin and the CLI see of the destinations, beyond the gate's rows. Reads only. */
export interface DestinationView {
  /** The destination a route key (a domain) goes to, when it has been mapped. */
  destinationOf(routeKey: string): string | undefined;
  /** The route keys known to go to a destination. */
  routeKeysOf(destination: string): string[];
  /** Limits now, what was learned and the rules in force; `shared`: the gate row's limits, taken in first; `scopeShared`: its provider scope row's. */
  politeness(destination: string, shared?: DestinationLimits, scopeShared?: DestinationLimits): PolitenessView;
  /** The key whose gate row holds a destination's provider rules and adaptive rate (`provider:<name>`, or itself). */
  scopeOf(destination: string): string;
  /** Destinations with something learned or a rule in force. */
  known(): string[];
}

const show = (r: LastReply): string => `${r.code}${r.enhanced ? ` ${r.enhanced}` : ''} ${r.text}`;

export class Destinations {
  private readonly map: DestinationMap;
  private readonly politeness: Politeness;
  private readonly backoff: BackoffSettings;
  /** delivery.destination_rate (restart-only). */
  private readonly rate: { count: number; perMs: number } | undefined;
  /** The tenants' rates, weights and suspensions (destination/tenants). */
  readonly tenants: Tenants;

  constructor(private readonly deps: DestinationsDeps) {
    const d = deps.config().delivery;
    this.backoff = { backoffMs: durationMs(d.destination_backoff), backoffMaxMs: durationMs(d.destination_backoff_max) };
    this.rate = d.destination_rate ? parseRate(d.destination_rate) : undefined;
    this.map = new DestinationMap({
      mxHostSet: deps.mxHostSet, clock: deps.clock,
      settings: () => ({ by: deps.config().delivery.destination_by, ttlMs: durationMs(deps.config().delivery.destination_cache_ttl) }),
    });
    this.politeness = new Politeness(deps.config, deps.clock, deps.shaping);
    this.tenants = new Tenants({ gate: deps.gate, config: deps.config, log: deps.log, clock: deps.clock, known: () => this.map.known(), scopeOf: (d) => this.shaping.scopeOf(d) });
  }

  /** The provider presets and reply rules in force (for the transport and `halcyon shaping explain`). */
  get shaping(): Shaping {
    return this.politeness.shaping;
  }

  private get leaseMs(): number {
    return durationMs(this.deps.config().delivery.lease);
  }

  // ---- where mail goes ----

  /** The destination of each route key (one DNS question per domain not known yet, asked together). */
  destinationsOf(routeKeys: Iterable<string>): Promise<Map<string, string>> {
    return this.map.keysFor(routeKeys);
  }

  /** The route keys whose recipients go to this work's destination: those claimed here and those the map knows. */
  private routeKeysOf(work: DestinationWork): string[] {
    return [...new Set([work.destination, ...work.routeKeys, ...this.map.domainsOf(work.destination)])];
  }

  /**
   * Route keys the next claim must skip: those of destinations whose work waits here (`busy`), and those of
   * destinations a rule suspends (the gate knows the rows, the claim query the route keys).
   */
  excluded(busy: readonly DestinationWork[], now: number): string[] {
    return [...new Set([
      ...busy.flatMap((w) => this.routeKeysOf(w)),
      ...[...this.map.known()].filter(([, dest]) => (this.politeness.suspendedUntil(dest) ?? 0) > now).map(([routeKey]) => routeKey),
    ])];
  }

  // ---- the gate ----

  /** On start: this node's slots from before are given back (their workers died with the last process). */
  releaseOwnSlots(): Promise<number> {
    return this.deps.gate.releaseNodeSlots(this.deps.node);
  }

  /** Housekeeping: any node's slots whose lease ran out return; records that say nothing any more are dropped. */
  async housekeeping(now: number): Promise<void> {
    this.politeness.prune();
    await this.deps.gate.releaseExpiredSlots(now);
  }

  /**
   * Asks the gate for up to `available` slots (all asked together: one queue turn), within the destination's
   * connection limit now. A probe is granted alone. `wait`: why no (further) slot, when the gate said so.
   */
  async acquire(work: DestinationWork, available: number, now: number): Promise<{ readonly slots: Slot[]; readonly wait?: Wait }> {
    // A provider's rules in force and adaptive rate, as any node left them on the scope's row, apply here first.
    const scope = this.shaping.scopeOf(work.destination);
    if (scope !== work.destination) this.politeness.absorb(scope, (await this.deps.gate.getDestination(scope))?.limits);
    const suspendedUntil = this.politeness.suspendedUntil(work.destination);
    // A suspend rule in force: the batches wait for its end in the queue, without asking the gate.
    if (suspendedUntil !== undefined && suspendedUntil > now) return { slots: [], wait: { kind: 'wait', reason: 'suspended', until: suspendedUntil } };
    // The adaptive limit (≤ the configured cap, lowered by rules) is the cap the gate enforces.
    const limit = this.politeness.connectionLimit(work.destination);
    const want = Math.min(available, limit - work.workers);
    if (want <= 0) return { slots: [] };
    const until = now + this.leaseMs;
    const grants = await Promise.all(Array.from({ length: want }, () => this.deps.gate.acquire({
      destination: work.destination, node: this.deps.node, now, leaseUntil: until, maxConnections: limit,
    })));
    const slots: Slot[] = [];
    let wait: Wait | undefined;
    for (const g of grants) {
      if (g.kind === 'wait') wait ??= g;
      else {
        // What other nodes learned about the destination (on the gate's row) applies here before any batch goes.
        this.politeness.absorb(work.destination, g.row?.limits);
        slots.push({ id: g.slot, probe: g.kind === 'probe', generation: g.generation, row: g.row, until });
      }
    }
    return wait ? { slots, wait } : { slots };
  }

  /** A slot held past half its lease is renewed (a worker can hold one longer than a lease). */
  async renew(slot: Slot, now: number): Promise<void> {
    if (now >= slot.until - this.leaseMs / 2 && await this.deps.gate.renewSlot(slot.id, now + this.leaseMs)) slot.until = now + this.leaseMs;
  }

  release(slot: Slot): Promise<void> {
    return this.deps.gate.releaseSlot(slot.id);
  }

  /** The destination's rate now: a rule's, the adaptive or the preset's (the slowest), else delivery.destination_rate; undefined when none is set. */
  private rateOf(destination: string): { readonly count: number; readonly perMs: number } | undefined {
    return this.politeness.rate(destination) ?? this.rate;
  }

  /** One token of the destination's shared rate (`rateOf`), from its scope's bucket (a provider's is one for all its MX sets); none set → ok. */
  async takeToken(destination: string, now: number): Promise<{ ok: true } | { ok: false; until: number }> {
    const rate = this.rateOf(destination);
    if (!rate) return { ok: true };
    const t = await this.deps.gate.takeToken(this.shaping.scopeOf(destination), now, rate);
    return t.ok ? { ok: true } : { ok: false, until: t.until };
  }

  // ---- a batch ----

  /** Recipients one transaction to the destination may carry now (a learned limit, I6). */
  recipientLimit(destination: string): number {
    return this.politeness.recipientLimit(destination);
  }

  /** A batch goes out now: what `afterBatch` compares against (a timeout is a throttle only if another session worked since). */
  started(work: DestinationWork): { readonly successes: number } {
    return { successes: work.successes };
  }

  /**
   * After a batch: what it taught (a session that worked, a recipient limit), and what its failure means —
   * a throttle (fewer connections) or the destination's failure (backoff) — or its recovery after a probe.
   */
  async afterBatch(work: DestinationWork, slot: Slot, result: BatchResult, started: { readonly successes: number }): Promise<AfterBatch> {
    const dest = work.destination;
    if (result.sessionWorked) {
      work.successes++;
      this.politeness.sessionWorked(dest);
    }
    const learned = result.limitReached !== undefined && this.limitReached(dest, result.limitReached.accepted, result.limitReached.reply);
    const failure = result.destinationFailure;
    // A delivery grows the adaptive rate (AIMD); a whole message per minute more is shared with the other nodes.
    if (!failure && result.sessionWorked && this.politeness.delivered(dest, this.rate)) await this.share(dest);
    // A reply a rule answered with a pause (suspend, slow_down): the rule decides when to go on, not a backoff.
    // Without a failure: a rule a recipient's own reply triggered paused it (or its provider); this connection stops too.
    const pause = this.politeness.pauseAfter(dest, failure);
    if (pause) return this.paused(work, failure ?? pause.reply, pause.until);
    // A reply that suspended the tenant whose mail drew it (suspend_tenant) says nothing of the destination: this connection ends, no backoff.
    if (failure && this.politeness.ruleOf(dest, failure)?.action === 'suspend_tenant') return { kind: 'throttled' };
    // The remote asked for fewer connections (failure-policy, on the result) and others of ours work: a throttle.
    // A timeout counts only when another session worked since this batch started (else every connection hangs).
    if (failure && result.throttle && (isTimeout(failure) ? work.successes > started.successes : work.workers > 1)) {
      this.throttle(work, failure);
      await this.share(dest);
      return { kind: 'throttled' };
    }
    if (learned) await this.share(dest);
    if (failure) return this.failed(work, slot, failure);
    if (slot.probe || (slot.row !== undefined && slot.row.health !== 'ok')) return { kind: 'go', slot: await this.recovered(dest, slot) };
    return { kind: 'go', slot };
  }

  /** A recipient-limit reply after `accepted` recipients (I6): true when the limit in force changed (logged). */
  private limitReached(dest: string, accepted: number, reply: LastReply): boolean {
    const now = this.politeness.limitReached(dest, accepted, reply);
    if (now === undefined) return false;
    this.deps.log.info({ event: 'destination_limit_learned', destination: dest, max_recipients: now, reply: show(reply) },
      `destination ${dest}: at most ${now} recipients per transaction`);
    return true;
  }

  /**
   * A rule paused the destination (or its whole provider) until `until`: this connection ends; its recipients
   * and every batch waiting here wait until then, without a backoff step or a failure counted.
   */
  private async paused(work: DestinationWork, why: LastReply, until: number): Promise<AfterBatch> {
    if (until > this.deps.clock()) {
      // A provider's pause holds for every MX set of it: the route keys known to go to any of them wait too.
      const scope = this.shaping.scopeOf(work.destination);
      const keys = new Set(this.routeKeysOf(work));
      if (scope !== work.destination) for (const [routeKey, dest] of this.map.known()) if (this.shaping.scopeOf(dest) === scope) keys.add(routeKey);
      for (const q of keys) {
        for (let i = 0; i < 1000; i++) if ((await this.deps.recipients.parkDestination(q, until, PARK_SLICE)) < PARK_SLICE) break;
      }
    }
    const reply: LastReply = { code: 451, enhanced: '4.7.0', text: `destination paused by a reply rule after ${why.host ? `${why.host}: ` : ''}${show(why)}`, ours: true };
    return { kind: 'failed', until, reply };
  }

  /** The throttle's effect: fewer connections (and a ceiling for "too many"), logged. */
  private throttle(work: DestinationWork, reply: LastReply): void {
    const limit = isTimeout(reply) ? this.politeness.sessionTimedOut(work.destination) : this.politeness.tooManyConnections(work.destination, work.workers - 1, reply);
    this.deps.log.warn({ event: 'destination_throttled', destination: work.destination, connections: limit, reply: show(reply) },
      `destination ${work.destination} asked for fewer connections: now ${limit}`);
  }

  /**
   * A connection-level failure: the row moves into (or further into) backoff by compare-and-set on the
   * generation this connection was granted under. Connections opened together (the first wave, up to the
   * cap, on any node) all fail together: the first failure moves the row on, the others find it moved and
   * change nothing (that used to jump a 1 m backoff straight to the 1 h cap). The one place the step is taken.
   */
  private async failed(work: DestinationWork, slot: Slot, why: LastReply): Promise<AfterBatch> {
    const dest = work.destination;
    const next = destinationFailed(slot.row, dest, this.deps.clock(), `${why.code} ${why.text}`, this.backoff);
    const r = await this.deps.gate.transition(dest, slot.generation, next);
    const row = r.row;
    if (r.applied && row) {
      // In slices: a million waiting rows must not hold the queue thread (and every 250) for seconds.
      // Every route key of the destination waits with it (its recipients are queued under them).
      for (const q of this.routeKeysOf(work)) {
        for (let i = 0; i < 1000; i++) if ((await this.deps.recipients.parkDestination(q, row.backoffUntil, PARK_SLICE)) < PARK_SLICE) break;
      }
      this.deps.log.warn({ event: 'destination_backoff', destination: dest, until: new Date(row.backoffUntil).toISOString(), failures: row.consecutiveFailures, reason: row.lastError },
        `destination ${dest} in backoff for ${Math.round(row.backoffMs / 1000)}s`);
    }
    // Halcyon's words, not the host's: the waiting batches were never tried (ours, and no host said it).
    const after = `${why.host ? `${why.host}: ` : ''}${why.ours ? '' : `${why.code}${why.enhanced ? ` ${why.enhanced}` : ''} `}${why.text}`;
    const reply: LastReply = { code: 451, enhanced: '4.4.1', text: `destination in backoff after ${after}`, ours: true };
    // The row moved on to healthy meanwhile (another node's probe went through): this failure is old news.
    return { kind: 'failed', until: row && row.health !== 'ok' ? row.backoffUntil : undefined, reply };
  }

  /** A connection went through while the row was not healthy (the probe, say): the destination recovers, once. */
  private async recovered(dest: string, slot: Slot): Promise<Slot> {
    const r = await this.deps.gate.transition(dest, slot.generation, destinationRecovered(slot.row, dest, this.deps.clock()));
    if (r.applied) this.deps.log.info({ event: 'destination_recovered', destination: dest }, 'destination recovered');
    // From here on this connection is an ordinary one, on the row as it now is.
    return { ...slot, probe: false, generation: r.row?.generation ?? slot.generation, row: r.row };
  }

  /**
   * The reply rule a reply from the destination to `tenant`'s mail triggers (now in force), logged once per trigger.
   * A suspend or set rule goes on the gate's row (`share`) once the caller has recorded the outcomes; a
   * suspend_tenant holds the tenant at the rule's scope (destination/tenants).
   */
  ruleFor(destination: string, queueId: string, reply: LastReply, tenant?: string): ReplyRule | undefined {
    const hit = this.politeness.onReply(destination, reply, this.rate);
    if (hit) {
      const { rule, scope, rate } = hit;
      if (rule.action === 'suspend_tenant') this.tenants.ruleTriggered(tenant, scope, rule, reply, this.deps.clock());
      this.deps.log.warn({
        event: 'rule_triggered', destination, rule: rule.text, action: rule.action, queue_id: queueId, reply: formatReply(reply), ...(tenant ? { tenant } : {}),
        ...(scope !== destination ? { scope } : {}), ...(rate !== undefined ? { rate_per_minute: Math.round(rate * 10) / 10 } : {}),
      }, `destination ${destination}${scope !== destination ? ` (${scope})` : ''}: ${rule.text}${rate !== undefined ? ` — rate now ${Math.round(rate * 10) / 10}/min` : ''}`);
    }
    return hit?.rule;
  }

  /** Puts what this node learned about a destination (and its provider scope) on the gate's rows, for every node (and the next start). */
  async share(destination: string): Promise<void> {
    await this.tenants.share();
    const scope = this.shaping.scopeOf(destination);
    for (const key of scope === destination ? [destination] : [destination, scope]) {
      const limits = this.politeness.shared(key);
      if (limits) await this.deps.gate.putLimits(key, limits, this.deps.clock()).catch((err: unknown) => {
        this.deps.log.warn({ event: 'qmgr_error', destination: key, err: (err as Error).message }, 'could not share learned limits');
      });
    }
  }

  // ---- what others see ----

  /** The read-only view for http/admin and the CLI: nothing it answers changes what the scheduler does. */
  readonly view: DestinationView = {
    destinationOf: (routeKey) => this.map.known().get(routeKey),
    routeKeysOf: (destination) => this.map.domainsOf(destination),
    politeness: (destination, shared, scopeShared) => this.politeness.view(destination, shared, scopeShared, this.rate),
    scopeOf: (destination) => this.shaping.scopeOf(destination),
    known: () => this.politeness.keys(),
  };
}

/** Rows parked per queue request when a destination goes into backoff. */
const PARK_SLICE = 5_000;

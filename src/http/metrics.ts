/**
 * http/metrics — Halcyon's Prometheus metrics, on a Registry of its own (not
 * prom-client's global one, so two apps in one test process don't collide).
 *
 * Counters are bumped by hooks the app wires (inbound onConnection /
 * onMessage / onReject, qmgr onOutcome, sweeps onExpired); gauges are read
 * from the store and the scheduler when /metrics is scraped. Destination
 * labels are bounded: the 20 destinations with most queued recipients by
 * name, the rest summed as "other". Every sample carries the node's id as
 * the label `node` (several nodes on one queue are scraped into one place).
 * While the queue is unavailable or failed, `halcyon_queue_up` is 0 and the
 * gauges read from it are left out rather than failing the scrape. Outcomes
 * also go to a per-minute ring (http/throughput) for the dashboard's chart,
 * and failures by bounce class to another (http/failures). Outcomes are
 * counted by bounce class and destination too; that counter names the first
 * MAX_CLASS_DESTINATIONS destinations it sees and counts the rest as "other"
 * (a counter cannot be re-ranked later, and label sets must stay bounded).
 * Accepted messages that name a tenant are counted by tenant too
 * (halcyon_messages_accepted_by_tenant_total): the first `[inject]
 * metric_tenants` tenants by name, the rest as "other", for the same reason.
 * Does not serve HTTP.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RecipientState } from '../queue/model.js';
import type { Queue } from '../queue/store.js';

/** What /metrics reads of the queue: counts, destinations in trouble, the outbox's depth, whether it answers. */
export type MetricsQueue = { readonly recipients: Pick<Queue['recipients'], 'counts'>; readonly gate: Pick<Queue['gate'], 'listDestinations'>; readonly events: Pick<Queue['events'], 'outboxDepth'>; readonly health: Pick<Queue['health'], 'state'> };
import { ThroughputRing } from './throughput.js';
import { FailureRing, type FailureStatus } from './failures.js';
import type { LastReply } from '../queue/model.js';
import type { BounceClass } from '../smtp/bounce-class.js';

export const TOP_DESTINATIONS = 20;
/** Destinations named on halcyon_recipient_classes_total; later ones are "other". */
export const MAX_CLASS_DESTINATIONS = 100;
const STATES: readonly RecipientState[] = ['queued', 'inflight', 'delivered', 'deferred', 'failed', 'expired'];
export type OutcomeStatus = 'sent' | 'deferred' | 'bounced' | 'expired' | 'suppressed';

/** One recipient outcome as the counters take it: its status, bounce class, destination and reply. */
export interface ClassifiedOutcome {
  readonly status: OutcomeStatus;
  readonly class: BounceClass;
  readonly destination: string;
  readonly recipient: string;
  readonly reply: LastReply;
  readonly latencyMs: number;
}

export interface MetricsSources {
  readonly store: MetricsQueue;
  /** This node's id (config node_id): the `node` label on every metric. */
  readonly node: string;
  readonly connections: () => ReadonlyMap<string, number>;
  readonly clock: () => number;
  /** The configured event sinks: each has an outbox depth, 0 when nothing waits. */
  readonly eventSinks?: readonly string[];
  /** How many tenants get a label value of their own (`[inject] metric_tenants`, read at each message); default 100. */
  readonly maxTenants?: () => number;
}

/** Keeps the top `n` keys by value and sums the rest under "other". */
export function topN(values: ReadonlyMap<string, number>, n: number): Map<string, number> {
  const sorted = [...values].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const out = new Map(sorted.slice(0, n));
  const rest = sorted.slice(n).reduce((s, [, v]) => s + v, 0);
  if (sorted.length > n) out.set('other', rest);
  return out;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly accepted: Counter;
  private readonly acceptedByTenant: Counter<'tenant'>;
  private readonly tenants = new Set<string>();
  private readonly maxTenants: () => number;
  private readonly rejected: Counter<'reason'>;
  private readonly recipients: Counter<'status'>;
  private readonly latency: Histogram;
  private readonly sessionWorkerConnections: Counter<'worker'>;
  private readonly inbound: Counter<'listener'>;
  private readonly eventsSentTotal: Counter<'sink'>;
  private readonly eventFailures: Counter<'sink'>;
  private readonly stsFetchFailed: Counter<'domain'>;
  private readonly verifyProbes: Counter<'verdict'>;
  private readonly classes: Counter<'status' | 'class' | 'destination'>;
  private readonly classDestinations = new Set<string>();
  /** Outcomes per minute over the last hour (GET /api/stats/throughput), fed by `outcome` with the counter. */
  readonly throughput: ThroughputRing;
  /** Failures by class over the last hour and the latest ones (GET /api/stats/failures), fed by `outcome`. */
  readonly failures: FailureRing;

  constructor(src: MetricsSources) {
    this.registry.setDefaultLabels({ node: src.node });
    this.throughput = new ThroughputRing(src.clock);
    this.failures = new FailureRing(src.clock);
    const registers = [this.registry];
    const up = () => src.store.health.state === 'ok';
    this.accepted = new Counter({ name: 'halcyon_messages_accepted_total', help: 'Messages accepted (250 to end of data, or injected)', registers });
    this.maxTenants = src.maxTenants ?? (() => 100);
    this.acceptedByTenant = new Counter({
      name: 'halcyon_messages_accepted_by_tenant_total',
      help: 'Accepted messages that name a tenant, by tenant (the first [inject] metric_tenants tenants seen by name, the rest as "other")',
      labelNames: ['tenant'], registers,
    });
    this.rejected = new Counter({ name: 'halcyon_messages_rejected_total', help: 'Inbound refusals by reason', labelNames: ['reason'], registers });
    this.recipients = new Counter({ name: 'halcyon_recipients_total', help: 'Recipient outcomes', labelNames: ['status'], registers });
    for (const s of ['sent', 'deferred', 'bounced', 'expired', 'suppressed']) this.recipients.inc({ status: s }, 0);
    this.classes = new Counter({
      name: 'halcyon_recipient_classes_total',
      help: `Recipient outcomes by status, bounce class and destination (the first ${MAX_CLASS_DESTINATIONS} destinations seen by name, the rest as "other")`,
      labelNames: ['status', 'class', 'destination'], registers,
    });
    this.latency = new Histogram({
      name: 'halcyon_delivery_latency_seconds', help: 'Time from acceptance to successful delivery', registers,
      buckets: [0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 14400, 86400],
    });
    this.stsFetchFailed = new Counter({
      name: 'halcyon_mta_sts_fetch_failures_total', help: 'MTA-STS policies named by a _mta-sts TXT record that could not be fetched, by policy domain', labelNames: ['domain'], registers,
    });
    this.verifyProbes = new Counter({
      name: 'halcyon_verify_probes_total', help: 'Recipient verification probes by what they found (exists, absent, unknown: no answer about the address)', labelNames: ['verdict'], registers,
    });
    for (const v of ['exists', 'absent', 'unknown']) this.verifyProbes.inc({ verdict: v }, 0);
    this.inbound = new Counter({ name: 'halcyon_inbound_connections_total', help: 'Inbound SMTP connections accepted', labelNames: ['listener'], registers });
    this.sessionWorkerConnections = new Counter({
      name: 'halcyon_session_worker_connections_total',
      help: 'Inbound connections admitted, by the SMTP session worker that took them ([server] workers; absent when sessions run on the main thread)',
      labelNames: ['worker'], registers,
    });
    const sinks = src.eventSinks ?? [];
    this.eventsSentTotal = new Counter({ name: 'halcyon_events_sent_total', help: 'Events acknowledged by each sink (from this node)', labelNames: ['sink'], registers });
    this.eventFailures = new Counter({ name: 'halcyon_event_send_failures_total', help: 'Batches of events a sink did not acknowledge (retried later)', labelNames: ['sink'], registers });
    for (const s of sinks) { this.eventsSentTotal.inc({ sink: s }, 0); this.eventFailures.inc({ sink: s }, 0); }
    new Gauge({
      name: 'halcyon_events_outbox_depth', help: 'Events waiting in the outbox for each sink (all nodes)', labelNames: ['sink'], registers,
      async collect() {
        this.reset();
        if (!up()) return;
        const depth = new Map<string, number>(sinks.map((s) => [s, 0]));
        for (const d of await src.store.events.outboxDepth()) depth.set(d.sink, d.depth);
        for (const [sink, n] of depth) this.set({ sink }, n);
      },
    });
    new Gauge({
      name: 'halcyon_queue_up', help: 'Whether this node can use the queue (1), or it is unreachable or failed (0)', registers,
      collect() {
        this.set(up() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'halcyon_queue_recipients', help: 'Recipients in the queue by state', labelNames: ['state'], registers,
      async collect() {
        this.reset();
        if (!up()) return;
        const c = await src.store.recipients.counts();
        for (const s of STATES) this.set({ state: s }, c.byState[s] ?? 0);
      },
    });
    new Gauge({
      name: 'halcyon_queue_messages', help: 'Messages in the queue', registers,
      async collect() {
        this.reset();
        if (up()) this.set((await src.store.recipients.counts()).messages);
      },
    });
    new Gauge({
      name: 'halcyon_destination_connections', help: `Open outbound connections (top ${TOP_DESTINATIONS} destinations, rest as "other")`,
      labelNames: ['destination'], registers,
      collect() {
        this.reset();
        for (const [k, v] of topN(src.connections(), TOP_DESTINATIONS)) this.set({ destination: k }, v);
      },
    });
    new Gauge({
      name: 'halcyon_destinations_backoff', help: `Destinations in backoff (1) by destination (top ${TOP_DESTINATIONS} by queued recipients, rest summed as "other")`,
      labelNames: ['destination'], registers,
      async collect() {
        this.reset();
        if (!up()) return;
        const now = src.clock();
        const rows = (await src.store.gate.listDestinations()).filter((d) => d.health !== 'ok' && (d.health === 'suspended' || d.backoffUntil > now));
        const queued = topN(new Map(rows.map((r) => [r.key, r.queued + 1])), TOP_DESTINATIONS);
        const named = new Set(queued.keys());
        for (const r of rows) if (named.has(r.key)) this.set({ destination: r.key }, 1);
        if (named.has('other')) this.set({ destination: 'other' }, rows.filter((r) => !named.has(r.key)).length);
      },
    });
  }

  messageAccepted(tenant?: string): void {
    this.accepted.inc();
    if (tenant === undefined) return;
    if (!this.tenants.has(tenant) && this.tenants.size < this.maxTenants()) this.tenants.add(tenant);
    this.acceptedByTenant.inc({ tenant: this.tenants.has(tenant) ? tenant : 'other' });
  }
  messageRejected(reason: string): void { this.rejected.inc({ reason }); }
  /** `worker`: the SMTP session worker that took it (app/session-workers), when sessions run on workers. */
  inboundConnection(listener: string, worker?: number): void {
    this.inbound.inc({ listener });
    if (worker !== undefined) this.sessionWorkerConnections.inc({ worker: String(worker) });
  }
  eventsSent(sink: string, n: number): void { this.eventsSentTotal.inc({ sink }, n); }
  eventSendFailed(sink: string): void { this.eventFailures.inc({ sink }); }
  mtaStsFetchFailed(domain: string): void { this.stsFetchFailed.inc({ domain }); }
  verifyProbe(verdict: 'exists' | 'absent' | 'unknown'): void { this.verifyProbes.inc({ verdict }); }
  outcome(o: ClassifiedOutcome): void {
    const { status } = o;
    this.recipients.inc({ status });
    this.throughput.record(status === 'expired' || status === 'suppressed' ? 'bounced' : status);
    if (status === 'sent') this.latency.observe(Math.max(0, o.latencyMs) / 1000);
    if (!this.classDestinations.has(o.destination) && this.classDestinations.size < MAX_CLASS_DESTINATIONS) this.classDestinations.add(o.destination);
    this.classes.inc({ status, class: o.class, destination: this.classDestinations.has(o.destination) ? o.destination : 'other' });
    if (status !== 'sent') this.failures.record({ class: o.class, status: status as FailureStatus, recipient: o.recipient, destination: o.destination, reply: o.reply });
  }

  text(): Promise<string> { return this.registry.metrics(); }
  get contentType(): string { return this.registry.contentType; }
}

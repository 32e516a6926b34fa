/**
 * app — the composition root: builds every service from one Config and wires
 * them together (store, mailboxes, inbound listeners, scheduler, admin HTTP).
 *
 * Holds no protocol or queue logic of its own. `startApp` is what
 * `halcyon serve` and the integration tests call; `stop` drains in order
 * (listeners first, deliveries next, the store last).
 *
 * Reload (SIGHUP → `reload(next)`): one live holder (config/live) keeps the
 * configuration in force and everything built from it (session settings,
 * relay matcher, users, mailboxes, the RCPT directory, DKIM keys); every
 * service reads it at use time, and a reload swaps it whole. Settings
 * captured when a service was built (RESTART_ONLY: listeners, data_dir, TLS,
 * DNS, the retry/backoff schedule, rate, timeouts, queue lifetime, delay
 * warning, hostname, node_id, postmaster, the admin listener, the event sinks) keep their
 * running values in the new snapshot, so `app.config` (and `config show`
 * against a running server) is exactly what is in force; `reload` names them.
 */
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { eventSinks } from './config/event-sinks.js';
import type { Config } from './config/schema.js';
import { durationMs, sizeBytes } from './config/units.js';
import { ConfigError } from './config/load.js';
import { Live } from './config/live.js';
import type { ListenerSpec } from './inbound/server.js';
import { loadTlsContext } from './inbound/tls-cert.js';
import { localDestination } from './inbound/directory.js';
import { Verifier } from './inbound/verifier.js';
import { LocalTransport } from './delivery/local-transport.js';
import { destinationKey } from './delivery/route.js';
import type { SmtpTransport } from './delivery/smtp-transport.js';
import { tlsFigures, type TlsRptRecorder, utcDay } from './delivery/tls-sessions.js';
import type { Mailboxes } from './local/maildir.js';
import { Qmgr } from './scheduler/qmgr.js';
import { Shaping } from './destination/providers.js';
import { Destinations } from './destination/service.js';
import { domainOf } from './smtp/address.js';
import { createLogger } from './log.js';
import { serverAdminLog } from './http/audit.js';
import { TokenBuckets } from './http/token-bucket.js';
import { Admin } from './http/admin.js';
import { AdminError } from './http/admin-api.js';
import { Metrics } from './http/metrics.js';
import { httpEnabled, startHttpServer, type HttpServer } from './http/server.js';
import type { Queue } from './queue/store.js';
import { openQueue, usesPostgres } from './queue/open.js';
import { assertQueueFit, markQueueCreated } from './queue/sqlite/check.js';
import { QueueSpace } from './queue/space.js';
import type { TlsRptSender } from './tlsrpt/sender.js';
import { startEvents } from './events/start.js';
import { buildRunning, configProblems, inForce, restartNeeded, type Running, verifySettings } from './app/running.js';
import { buildOutbound } from './app/outbound.js';
import { buildInbound, intakeFor, localNode } from './app/inbound.js';
import { SessionWorkers, sessionWorkerCount } from './app/session-workers.js';
import { useIdLane } from './queue/ids.js';
import { logQueueHealth } from './app/queue-health.js';
import { startTlsRpt } from './app/tls-rpt.js';

export { configProblems, RESTART_ONLY } from './app/running.js';

export interface AppOptions {
  readonly logger?: Logger;
  readonly clock?: () => number;
  /** Don't start the scheduler's timer loop (tests drive `qmgr.runOnce()` themselves). */
  readonly manualScheduler?: boolean;
  readonly random?: () => number;
}

export interface App {
  readonly config: Config;
  readonly store: Queue;
  readonly mailboxes: Mailboxes;
  readonly qmgr: Qmgr;
  /** Everything about destinations (destination/service); `destinations.view` is what the admin side reads. */
  readonly destinations: Destinations;
  readonly smtp: SmtpTransport;
  /** Recipient verification at RCPT (inbound/verifier). */
  readonly verifier: Verifier;
  readonly log: Logger;
  /** Where each listener is bound ("127.0.0.1:2525"), ports resolved. */
  readonly listening: readonly { kind: string; address: string }[];
  readonly metrics: Metrics;
  /** The queue operations behind the admin API (also for in-process tests). */
  readonly admin: Admin;
  /** Where the admin HTTP listener is bound, when enabled. */
  readonly httpAddress?: string;
  /** TLS-RPT: the session counter and the daily report sender (tests drive `sender.runOnce`). */
  readonly tlsRpt: { readonly recorder: TlsRptRecorder; readonly sender: TlsRptSender };
  /** The SMTP session workers, when `[server] workers` > 0 (app/session-workers). */
  readonly sessionWorkers: SessionWorkers | undefined;
  /** Applies a new, already validated configuration (SIGHUP); throws ConfigError and keeps the old one if it cannot. */
  reload(next: Config): Promise<ReloadResult>;
  stop(deadlineMs?: number): Promise<void>;
}

export interface ReloadResult {
  /** Top-level keys whose change needs a restart to take effect (they kept their old value). */
  readonly restartNeeded: string[];
}

export async function startApp(cfg: Config, opts: AppOptions = {}): Promise<App> {
  // Every line names the node: several nodes on one queue log to one place.
  const log = (opts.logger ?? createLogger({ level: cfg.log_level, format: cfg.log_format, time: cfg.log.time })).child({ node: cfg.node_id });
  const clock = opts.clock ?? Date.now;
  const problems = configProblems(cfg);
  if (problems.length > 0) throw new ConfigError(undefined, problems);
  mkdirSync(cfg.data_dir, { recursive: true });
  const live = new Live<Running>(await buildRunning(cfg, cfg.data_dir, log));
  live.current.aliases?.watch(durationMs(cfg.aliases.check_interval));
  const config = (): Config => live.current.config;
  // The queue runs in its own thread: commits (fsync) never stall SMTP sessions, and share one commit per turn.
  // A damaged queue, or one that lost its file, is refused here rather than served (queue/sqlite/check).
  // (A shared PostgreSQL queue has no file here to check.)
  if (!usesPostgres(cfg)) assertQueueFit(cfg.data_dir);
  // On a full disk the reserve is given up so the queue can open and deliver; new mail then waits (queue/space).
  const space = new QueueSpace(cfg.data_dir, () => sizeBytes(config().smtp.max_message_size));
  if (space.atStart().released) log.warn({ event: 'disk_full_at_start', data_dir: cfg.data_dir }, 'disk nearly full: released the queue reserve; new mail gets 452 4.3.1 until space returns');
  // SMTP sessions on worker threads ([server] workers, app/session-workers): each thread makes ids in its own lane.
  const workers = sessionWorkerCount(cfg);
  useIdLane({ index: 0, lanes: workers + 1 });
  const store = await openQueue(cfg, { clock, server: true });
  if (!usesPostgres(cfg)) markQueueCreated(cfg.data_dir);
  const tlsContext = await loadTlsContext({ cert: cfg.tls.cert, key: cfg.tls.key, dataDir: cfg.data_dir, hostname: cfg.hostname });
  // Gauges read qmgr lazily: it is built below.
  const metrics = new Metrics({ store, node: cfg.node_id, clock, connections: () => qmgr.connections(), eventSinks: eventSinks(cfg).map((s) => s.name), maxTenants: () => config().inject.metric_tenants });

  // The one door into the queue for new messages: sessions, injection and DSNs all go through it.
  const intake = intakeFor(live, store.messages, clock);

  // Provider presets and reply rules (data/providers.toml under [shaping]): the transport's per-provider TLS and
  // messages per connection, the destination service's caps, rates and rules. A bad override fails the start here.
  const shaping = new Shaping(config);
  shaping.presets();
  const { resolver, authDns, smtp, tlsRecorder, startDane, ca } = buildOutbound(cfg, { config, log, clock, metrics, store, shaping });
  const local = new LocalTransport(() => live.current.mailboxes, log, () => config().inbound.quarantine === 'junk');
  const destinationOf = (address: string): string => {
    const domain = domainOf(address);
    return live.current.mailboxes.isLocalDomain(domain) ? localDestination(domain) : destinationKey(domain, config().routes);
  };
  // Everything about a destination (map, gate, politeness, failure and backoff), and the read-only view of it.
  const destinations = new Destinations({
    gate: store.gate, recipients: store.recipients, config, log, clock, node: cfg.node_id, shaping, ...(resolver.mxHostSet ? { mxHostSet: resolver.mxHostSet } : {}),
  });
  const qmgr: Qmgr = new Qmgr({
    queue: store, destinations, smtp, local, config, log, clock, random: opts.random, node: cfg.node_id, shared: usesPostgres(cfg),
    queueDown: () => store.health.state !== 'ok',
    classify: (r) => live.current.classifier.classify(r),
    onOutcome: (status, destination, latencyMs, cls, reply, recipient) => metrics.outcome({ status, class: cls, destination, recipient, reply, latencyMs }),
    sweeps: {
      lifetimeMs: durationMs(cfg.delivery.max_queue_lifetime),
      delayWarningMs: durationMs(cfg.delivery.delay_warning_after),
      notify: { hostname: cfg.hostname, postmaster: cfg.postmaster, lifetimeMs: durationMs(cfg.delivery.max_queue_lifetime), destinationOf, isLocal: (d) => d.startsWith('local:') },
      intake,
      onEnqueued: () => qmgr.poke(),
      onExpired: (destination, cls, reply, recipient) => metrics.outcome({ status: 'expired', class: cls, destination, recipient, reply, latencyMs: 0 }),
    },
  });

  // Recipient verification: probes on the delivery path, through destination/service like deliveries (gate, cap, rate, backoff).
  const verifier = new Verifier({
    cache: store.verifications, destinations, clock, log,
    probe: (domain, address) => smtp.probe(domain, address),
    routes: () => config().routes,
    settings: () => verifySettings(config()),
    onProbe: (verdict) => metrics.verifyProbe(verdict),
    classify: (r) => live.current.classifier.classify(r),
  });

  logQueueHealth(cfg, store, log, () => qmgr.poke());
  // What the node decides about sessions (counts, rates, verification) is decided here, wherever they run.
  const node = localNode({ live, clock, metrics, store, verifier, onMessage: () => qmgr.poke() });
  const inbound = workers > 0
    ? new SessionWorkers(workers, { config, log, node, queue: store })
    : buildInbound(cfg, { live, log, clock, intake, suppressions: store.suppressions, space, tlsContext, authDns, node });
  const admin = new Admin({
    store, intake, clock, config, queueTrouble: () => store.health.problem,
    maxMessageSize: () => sizeBytes(config().smtp.max_message_size),
    directory: () => live.current.directory,
    tlsReports: async () => {
      await tlsRecorder.flush();
      return tlsFigures(await store.tlsReports.tlsSessionCounts(utcDay(clock())));
    },
    throughput: () => metrics.throughput.snapshot(cfg.node_id),
    failures: () => metrics.failures.snapshot(cfg.node_id),
    reloadAliases: () => {
      const aliases = live.current.aliases;
      if (!aliases) throw new AdminError('bad_request', 'no aliases file is configured ([aliases] file)');
      try {
        return aliases.load('newaliases');
      } catch (err) {
        throw new AdminError('unavailable', `${aliases.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the aliases in force stay`);
      }
    },
    destinationView: destinations.view,
    tenants: destinations.tenants,
    poke: () => qmgr.poke(),
    classify: (r) => live.current.classifier.classify(r),
    injectBuckets: new TokenBuckets(),
    ...serverAdminLog(log, {
      accepted: (tenant) => metrics.messageAccepted(tenant),
      bounced: (recipient, reply, destination) => metrics.outcome({ status: 'bounced', class: reply.class ?? live.current.classifier.classify(reply), destination, recipient, reply, latencyMs: 0 }),
    }),
  });
  const specs: ListenerSpec[] = [
    ...cfg.smtp.listen.map((address) => ({ address, kind: 'smtp' as const })),
    ...cfg.submission.listen.map((address) => ({ address, kind: 'submission' as const })),
    ...cfg.submission.tls_listen.map((address) => ({ address, kind: 'submission' as const, implicitTls: true })),
  ];
  let listening: { kind: string; address: string }[];
  try {
    listening = await inbound.listen(specs);
  } catch (err) {
    await inbound.close();
    await store.close();
    throw err;
  }
  let httpServer: HttpServer | undefined;
  if (httpEnabled(cfg)) {
    try {
      httpServer = await startHttpServer({ admin, metrics, config, log, clock }, cfg.http.listen);
    } catch (err) {
      await inbound.close();
      await store.close();
      throw err;
    }
    listening.push({ kind: 'http', address: httpServer.address });
  }
  for (const l of listening) log.info({ event: 'listening', listener: l.kind, address: l.address }, `listening on ${l.address} (${l.kind})`);
  if (!opts.manualScheduler) {
    void startDane();
    await qmgr.start();
  }
  const tlsRpt = startTlsRpt(cfg, { config, store, recorder: tlsRecorder, authDns, intake, log, clock, destinationOf, ...(ca ? { ca } : {}), manual: opts.manualScheduler === true });
  // The outbox's senders: beside delivery, never in its way (events/dispatcher).
  const events = startEvents(cfg, store.events, log, { clock, onSent: (sink, n) => metrics.eventsSent(sink, n), onFailed: (sink) => metrics.eventSendFailed(sink) });

  async function reload(next: Config): Promise<ReloadResult> {
    const running = live.current.config;
    const kept = inForce(next, running);
    const bad = configProblems(kept);
    if (bad.length > 0) throw new ConfigError(undefined, bad);
    // Build everything first, so a failure leaves the old configuration whole; then swap it in one step.
    const before = live.current.aliases;
    live.replace(await buildRunning(kept, running.data_dir, log, live.current));
    if (before !== live.current.aliases) before?.close();
    live.current.aliases?.watch(durationMs(kept.aliases.check_interval));
    log.level = kept.log_level;
    if (inbound instanceof SessionWorkers) await inbound.reload(kept);
    qmgr.poke();
    return { restartNeeded: restartNeeded(next, running) };
  }

  let stopped = false;
  return {
    get config() { return live.current.config; },
    get mailboxes() { return live.current.mailboxes; },
    store, qmgr, destinations, smtp, verifier, log, listening, metrics, admin, httpAddress: httpServer?.address, reload,
    tlsRpt: { recorder: tlsRecorder, sender: tlsRpt.sender },
    sessionWorkers: inbound instanceof SessionWorkers ? inbound : undefined,
    async stop(deadlineMs = 10_000) {
      if (stopped) return;
      stopped = true;
      const deadline = Date.now() + deadlineMs;
      await inbound.drain(deadlineMs);
      // Deliveries and the last queue calls get what is left of the deadline: a broken queue must not hold the stop.
      // The listeners close even when the scheduler's last queue calls fail (a failed queue): else they outlive the stop.
      const rest = (async () => {
        try { await qmgr.stop(); } finally {
          tlsRpt.stop();
          live.current.aliases?.close();
          await httpServer?.close(); await smtp.close(); await events.stop(); await tlsRecorder.close();
        }
      })().catch((err: unknown) => {
        log.warn({ event: 'stop_incomplete', err: (err as Error).message }, 'stop: some work did not finish cleanly');
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([rest.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), Math.max(0, deadline - Date.now())); })]);
      clearTimeout(timer);
      if (timedOut) log.warn({ event: 'stop_deadline', deadline_ms: deadlineMs }, 'stop: deadline reached with work still waiting on the queue; closing it anyway');
      await store.close(Math.max(1_000, deadline - Date.now()));
    },
  };
}

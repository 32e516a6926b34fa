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
import { detailOf } from './errors.js';
import { Resolver as DnsResolver } from 'node:dns';
import { mkdirSync, readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { eventSinks } from './config/event-sinks.js';
import type { Config } from './config/schema.js';
import { durationMs, sizeBytes } from './config/units.js';
import { UserDirectory } from './inbound/auth.js';
import { createDirectory } from './inbound/directory.js';
import { networkMatcher } from './inbound/policy.js';
import { AuthThrottle } from './inbound/auth-throttle.js';
import { InboundServer, type ListenerSpec } from './inbound/server.js';
import type { SessionSettings } from './inbound/session.js';
import { Anvil, type RateKind } from './inbound/anvil.js';
import { createDnsblChecker } from './inbound/dnsbl.js';
import { loadTlsContext, tlsFileProblems } from './inbound/tls-cert.js';
import { LocalTransport } from './delivery/local-transport.js';
import { createResolver } from './delivery/resolve.js';
import { destinationKey } from './delivery/route.js';
import { SmtpTransport } from './delivery/smtp-transport.js';
import { localDestination } from './inbound/directory.js';
import { Verifier } from './inbound/verifier.js';
import type { VerifySettings } from './inbound/verify-policy.js';
import { Mailboxes } from './local/maildir.js';
import { Qmgr } from './scheduler/qmgr.js';
import { Shaping } from './destination/providers.js';
import { Destinations } from './destination/service.js';
import { domainOf } from './smtp/address.js';
import { createLogger } from './log.js';
import { serverAdminLog } from './http/audit.js';
import type { Queue } from './queue/store.js';
import { openQueue, usesPostgres } from './queue/open.js';
import { PROBE_INITIAL_MS, PROBE_MAX_MS } from './queue/health.js';
import { assertQueueFit, markQueueCreated, queueFiles } from './queue/sqlite/check.js';
import { QueueSpace } from './queue/space.js';
import { ConfigError, type ConfigProblem } from './config/load.js';
import { loadBounceClassifier } from './config/bounce-rules-file.js';
import { suppressionKey } from './queue/suppression.js';
import type { BounceClassifier } from './smtp/bounce-rules.js';
import { Live, valueAt, withValueAt } from './config/live.js';
import { Admin } from './http/admin.js';
import { Intake } from './intake/intake.js';
import { loadDkimKeys } from './intake/dkim-keys.js';
import type { DkimKey } from './intake/dkim.js';
import { createAuthResolver } from './inbound/auth-dns.js';
import { AuthChecker } from './inbound/authcheck.js';
import { MtaSts } from './delivery/mta-sts.js';
import { Dane } from './delivery/dane.js';
import { daneSelfTest } from './delivery/dane-selftest.js';
import { createDnssecQuery } from './delivery/dnssec-query.js';
import { tlsFigures, TlsRptRecorder, utcDay } from './delivery/tls-sessions.js';
import { TlsRptSender } from './tlsrpt/sender.js';
import { Metrics } from './http/metrics.js';
import { startEvents } from './events/start.js';
import { httpConfigProblems, httpEnabled, startHttpServer, type HttpServer } from './http/server.js';

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
  /** Applies a new, already validated configuration (SIGHUP); throws ConfigError and keeps the old one if it cannot. */
  reload(next: Config): Promise<ReloadResult>;
  stop(deadlineMs?: number): Promise<void>;
}

export interface ReloadResult {
  /** Top-level keys whose change needs a restart to take effect (they kept their old value). */
  readonly restartNeeded: string[];
}

/** Settings captured when a service is built: a reload cannot change them (key paths into Config). */
export const RESTART_ONLY: readonly string[] = [
  'data_dir', 'smtp.listen', 'submission.listen', 'submission.tls_listen', 'tls', 'dns', 'http.listen', 'http.enabled', 'log_format',
  'delivery.retry_initial', 'delivery.retry_max', 'delivery.destination_backoff', 'delivery.destination_backoff_max',
  'delivery.destination_rate', 'delivery.timeouts', 'delivery.connection_idle_timeout',
  'delivery.max_queue_lifetime', 'delivery.delay_warning_after', 'delivery.tls_ca_file', 'delivery.mta_sts', 'hostname', 'node_id', 'queue', 'postmaster',
  'events', 'delivery.dane', 'tls_rpt.interval',
];

/** `next` with every restart-only setting at its running value: what a reload puts in force. */
export function inForce(next: Config, running: Config): Config {
  return RESTART_ONLY.reduce((c, path) => withValueAt(c, path, valueAt(running, path)), next);
}

/**
 * Everything a valid-looking configuration could still fail on at start:
 * the admin listener's token rule, TLS files that cannot be read or do not
 * make a key pair, DKIM keys that cannot be loaded. `config check`, `serve`
 * and a reload all ask this.
 */
export function configProblems(cfg: Config): ConfigProblem[] {
  const problems = [...httpConfigProblems(cfg), ...tlsFileProblems(cfg.tls)];
  for (const load of [() => loadDkimKeys(cfg.dkim), () => loadDkimKeys(cfg.arc, 'arc')]) {
    try {
      load();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  try {
    loadBounceClassifier(cfg.bounces.rules);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  return problems;
}

/** What the services read at use time: the configuration in force and what is built from it. */
interface Running {
  readonly config: Config;
  readonly mailboxes: Mailboxes;
  readonly users: UserDirectory;
  readonly directory: ReturnType<typeof createDirectory>;
  readonly mayRelayFrom: (ip: string) => boolean;
  readonly dkimKeys: DkimKey[];
  readonly arcKeys: DkimKey[];
  readonly settings: { smtp: SessionSettings; submission: SessionSettings; greetingDelayMs: number };
  /** The bounce classifier: bounces.rules first, then the shipped rules (config/bounce-rules-file). */
  readonly classifier: BounceClassifier;
}

async function buildRunning(cfg: Config, dataDir: string): Promise<Running> {
  const mailboxes = new Mailboxes(cfg.domains, dataDir, { hostname: cfg.hostname });
  await mailboxes.refreshUsage();
  return {
    config: cfg,
    mailboxes,
    users: new UserDirectory(cfg.users),
    directory: createDirectory(cfg, mailboxes),
    mayRelayFrom: networkMatcher(cfg.relay.networks),
    dkimKeys: loadDkimKeys(cfg.dkim),
    arcKeys: loadDkimKeys(cfg.arc, 'arc'),
    settings: { smtp: sessionSettings(cfg, 'smtp'), submission: sessionSettings(cfg, 'submission'), greetingDelayMs: durationMs(cfg.smtp.greeting_delay) },
    classifier: loadBounceClassifier(cfg.bounces.rules),
  };
}

export function sessionSettings(cfg: Config, kind: 'smtp' | 'submission'): SessionSettings {
  return {
    verify: kind === 'smtp' && cfg.inbound.verify,
    dmarc: cfg.inbound.dmarc,
    hostname: cfg.hostname,
    kind,
    maxMessageSize: sizeBytes(cfg.smtp.max_message_size),
    maxRecipients: cfg.smtp.max_recipients,
    maxErrors: cfg.smtp.max_errors,
    bareNewline: cfg.smtp.bare_newline,
    commandTimeoutMs: durationMs(cfg.smtp.command_timeout),
    dataTimeoutMs: durationMs(cfg.smtp.data_timeout),
    maxReceivedHeaders: cfg.smtp.max_received_headers,
  };
}

/** [recipient_verification] in milliseconds. */
export function verifySettings(cfg: Config): VerifySettings {
  const v = cfg.recipient_verification;
  return {
    waitMs: durationMs(v.wait), unreachable: v.unreachable,
    positiveRefreshMs: durationMs(v.positive_refresh), positiveExpireMs: durationMs(v.positive_expire),
    negativeRefreshMs: durationMs(v.negative_refresh), negativeExpireMs: durationMs(v.negative_expire),
  };
}

/** [delivery] tls_ca_file's certificates; a file that cannot be read is a configuration error. */
function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(undefined, [{ path: 'delivery.tls_ca_file', message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
}

export async function startApp(cfg: Config, opts: AppOptions = {}): Promise<App> {
  // Every line names the node: several nodes on one queue log to one place.
  const log = (opts.logger ?? createLogger({ level: cfg.log_level, format: cfg.log_format, time: cfg.log.time })).child({ node: cfg.node_id });
  const clock = opts.clock ?? Date.now;
  const problems = configProblems(cfg);
  if (problems.length > 0) throw new ConfigError(undefined, problems);
  mkdirSync(cfg.data_dir, { recursive: true });
  const live = new Live<Running>(await buildRunning(cfg, cfg.data_dir));
  const config = (): Config => live.current.config;
  // The queue runs in its own thread: commits (fsync) never stall SMTP sessions, and share one commit per turn.
  // A damaged queue, or one that lost its file, is refused here rather than served (queue/sqlite/check).
  // (A shared PostgreSQL queue has no file here to check.)
  if (!usesPostgres(cfg)) assertQueueFit(cfg.data_dir);
  // On a full disk the reserve is given up so the queue can open and deliver; new mail then waits (queue/space).
  const space = new QueueSpace(cfg.data_dir, () => sizeBytes(config().smtp.max_message_size));
  if (space.atStart().released) log.warn({ event: 'disk_full_at_start', data_dir: cfg.data_dir }, 'disk nearly full: released the queue reserve; new mail gets 452 4.3.1 until space returns');
  const store = await openQueue(cfg, { clock, server: true });
  if (!usesPostgres(cfg)) markQueueCreated(cfg.data_dir);
  const tlsContext = await loadTlsContext({ cert: cfg.tls.cert, key: cfg.tls.key, dataDir: cfg.data_dir, hostname: cfg.hostname });
  // The DNSBL checker is built from the live [inbound] settings per configuration; its resolver settings are the start's.
  const dnsblOf = (c: Config) => createDnsblChecker(c.inbound.dnsbl, { servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) }, log, clock);
  let dnsbl = { of: live.current.config, checker: dnsblOf(live.current.config) };
  const dnsblNow = () => (dnsbl.of === config() ? dnsbl.checker : (dnsbl = { of: config(), checker: dnsblOf(config()) }).checker);
  const anvil = new Anvil(() => ({
    connections: config().inbound.connection_rate_limit, messages: config().inbound.message_rate_limit, recipients: config().inbound.recipient_rate_limit,
  }), clock);
  /** One rate event; counted in /metrics (halcyon_messages_rejected_total{reason="rate_…"}) by the caller when over. */
  const over = (kind: RateKind, key: string): boolean => anvil.hit(kind, key).over;
  // Gauges read qmgr lazily: it is built below.
  const metrics = new Metrics({ store, node: cfg.node_id, clock, connections: () => qmgr.connections(), eventSinks: eventSinks(cfg).map((s) => s.name) });

  // The one door into the queue for new messages: sessions, injection and DSNs all go through it.
  const intake = new Intake({ store: store.messages, hostname: () => config().hostname, clock, dkimKeys: () => live.current.dkimKeys, arcKeys: () => live.current.arcKeys });

  const resolver = createResolver({ servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) });
  // One cached resolver for what mailauth looks up: SPF/DKIM/DMARC/ARC inbound, the _mta-sts record outbound.
  const authDns = createAuthResolver({ servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) });
  const authChecker = new AuthChecker(() => config().hostname, authDns);
  const caFile = cfg.delivery.tls_ca_file ? readCaFile(cfg.delivery.tls_ca_file) : undefined;
  const mtaSts = cfg.delivery.mta_sts ? new MtaSts({
    resolver: authDns, ca: caFile, hosts: () => config().delivery.mta_sts_hosts, clock,
    onFetchFailed: (domain, reason) => {
      metrics.mtaStsFetchFailed(domain);
      log.warn({ domain, event: 'mta_sts_fetch_failed', reason }, `MTA-STS: ${domain} publishes a policy, but it could not be fetched (${reason}); using the cached policy if any`);
    },
  }) : undefined;
  // DANE: off until the self-test shows the resolver validates; MX deliveries wait for its verdict (at most two DNS timeouts).
  // The server runs it at start (with the scheduler); an app whose scheduler is driven by hand, at its first MX delivery.
  const daneQuery = daneSelfTest({
    mode: cfg.delivery.dane, servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout),
    signed: cfg.dns.selftest_signed, bogus: cfg.dns.selftest_bogus, system: new DnsResolver().getServers(), makeQuery: createDnssecQuery,
    report: (r) => {
      if (r.on) log.info({ event: 'dane_selftest', dane: 'on', detail: r.detail }, `DANE on: ${r.detail}`);
      else log.error({ event: 'dane_selftest', dane: 'off', reason: r.reason }, `DANE OFF: the DNSSEC self-test failed: ${r.reason}. Mail to DANE domains goes out with opportunistic TLS (or MTA-STS) until this is fixed and Halcyon restarted`);
    },
  });
  let daneReady: Promise<Dane | undefined> | undefined;
  const dane = (): Promise<Dane | undefined> => (daneReady ??= daneQuery().then((q) => (q ? new Dane(q) : undefined)));
  const tlsRecorder = new TlsRptRecorder(store.tlsReports, clock);
  // Provider presets and reply rules (data/providers.toml under [shaping]): the transport's per-provider TLS and
  // messages per connection, the destination service's caps, rates and rules. A bad override fails the start here.
  const shaping = new Shaping(config);
  shaping.presets();
  const smtp = new SmtpTransport({
    config, resolver, log, clock, mtaSts, dane, tlsRpt: tlsRecorder, ...(caFile ? { ca: [...tls.rootCertificates, caFile] } : {}), shaping,
  });
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

  // One line per change of the queue's health (queue/health), not one per message. Failed or unavailable:
  // new mail gets 451 4.3.0, nothing is claimed, /api/health answers 503. Unavailable ends by itself (the
  // probe), failed at restart.
  store.health.onChange((change) => {
    const err = change.error?.message ?? '';
    if (change.state === 'failed') {
      const file = usesPostgres(cfg) ? cfg.queue.url : queueFiles(cfg.data_dir).db;
      log.error({ event: 'queue_storage_failed', file, err },
        `queue storage failed (${file}): ${err}; new mail gets 451 4.3.0 and no delivery is started. Stop the server and run 'halcyon queue check' (then 'halcyon queue salvage' if it reports damage)`);
    } else if (change.state === 'unavailable') {
      log.error({ event: 'queue_unavailable', err },
        `queue database unreachable: ${err}; new mail gets 451 4.3.0 and nothing is claimed until it answers again (retrying every ${PROBE_INITIAL_MS / 1000}-${PROBE_MAX_MS / 1000} s)`);
    } else {
      log.warn({ event: 'queue_restored', down_ms: change.downMs }, `queue database reachable again after ${((change.downMs ?? 0) / 1000).toFixed(1)} s; accepting and delivering`);
      qmgr.poke();
    }
  });

  // Shared by every session, kept across reloads: failures count per address, not per connection.
  const authThrottle = new AuthThrottle({
    get failureDelayMs() { return durationMs(config().smtp.auth_failure_delay); },
    get maxFailures() { return config().smtp.auth_max_failures; },
    get lockoutMs() { return durationMs(config().smtp.auth_lockout); },
  }, clock);
  const inbound = new InboundServer(
    {
      get maxConnections() { return config().smtp.max_connections; },
      get maxConnectionsPerIp() { return config().smtp.max_connections_per_ip; },
      get greetingDelayMs() { return live.current.settings.greetingDelayMs; },
      connectionRateExceeded: (ip) => {
        if (live.current.mayRelayFrom(ip) || !over('connections', ip)) return false;
        metrics.messageRejected('rate_connections');
        return true;
      },
    },
    (kind) => {
      // One snapshot per connection: a session keeps the settings it started with.
      const r = live.current;
      const dnsblChecker = dnsblNow();
      return {
        settings: r.settings[kind], intake, authChecker, users: r.users, directory: r.directory, mayRelayFrom: r.mayRelayFrom, tlsContext, log, authThrottle,
        acceptsMail: (size) => space.acceptsMail(size),
        queueTrouble: () => store.health.problem?.code,
        ...(dnsblChecker.enabled ? { dnsbl: (ip: string) => dnsblChecker.check(ip) } : {}),
        verifyRecipient: (address: string, domain: string) => verifier.check(address, domain),
        // A list that cannot be read refuses nothing: the scheduler checks again before delivery.
        suppressed: async (address: string) => (r.config.suppression.enabled
          ? (await store.suppressions.suppressed([address], clock()).catch((err: unknown) => {
            log.warn({ event: 'suppression_read_failed', to: address, err: detailOf(err) }, `could not read the suppression list at RCPT: ${detailOf(err)}`);
            return new Map<string, never>();
          })).get(suppressionKey(address)) : undefined),
        rate: { messageOver: (ip: string) => over('messages', ip), recipientOver: (user: string) => over('recipients', user) },
        onMessage: () => { metrics.messageAccepted(); qmgr.poke(); },
        onReject: (reason) => metrics.messageRejected(reason),
      };
    },
    log,
    (kind) => metrics.inboundConnection(kind),
  );
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
    destinationView: destinations.view,
    poke: () => qmgr.poke(),
    classify: (r) => live.current.classifier.classify(r),
    ...serverAdminLog(log, {
      accepted: () => metrics.messageAccepted(),
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
    void dane();
    await qmgr.start();
  }
  const tlsSender = new TlsRptSender({
    store: store.tlsReports, resolver: authDns, intake, log, node: cfg.node_id, clock, destinationOf,
    ...(caFile ? { ca: [...tls.rootCertificates, caFile] } : {}),
    settings: () => {
      const c = config();
      return { send: c.tls_rpt.send, organization: c.tls_rpt.organization ?? c.hostname, contact: c.tls_rpt.contact ?? c.postmaster, from: c.tls_rpt.from ?? c.postmaster, submitter: c.hostname };
    },
  });
  // The daily reports: looked for every interval, beside delivery (a failure is logged by the sender, or here).
  const tlsTimer = opts.manualScheduler ? undefined : setInterval(() => {
    void tlsRecorder.flush().then(() => tlsSender.runOnce()).catch((err: unknown) => log.warn({ event: 'tls_report', err: (err as Error).message }, 'TLS-RPT: could not look for reports to send'));
  }, durationMs(cfg.tls_rpt.interval));
  tlsTimer?.unref();
  // The outbox's senders: beside delivery, never in its way (events/dispatcher).
  const events = startEvents(cfg, store.events, log, { clock, onSent: (sink, n) => metrics.eventsSent(sink, n), onFailed: (sink) => metrics.eventSendFailed(sink) });

  async function reload(next: Config): Promise<ReloadResult> {
    const running = live.current.config;
    const kept = inForce(next, running);
    const bad = configProblems(kept);
    if (bad.length > 0) throw new ConfigError(undefined, bad);
    const restartNeeded = RESTART_ONLY.filter((k) => JSON.stringify(valueAt(next, k)) !== JSON.stringify(valueAt(running, k)));
    // Build everything first, so a failure leaves the old configuration whole; then swap it in one step.
    live.replace(await buildRunning(kept, running.data_dir));
    log.level = kept.log_level;
    qmgr.poke();
    return { restartNeeded };
  }

  let stopped = false;
  return {
    get config() { return live.current.config; },
    get mailboxes() { return live.current.mailboxes; },
    store, qmgr, destinations, smtp, verifier, log, listening, metrics, admin, httpAddress: httpServer?.address, reload,
    tlsRpt: { recorder: tlsRecorder, sender: tlsSender },
    async stop(deadlineMs = 10_000) {
      if (stopped) return;
      stopped = true;
      const deadline = Date.now() + deadlineMs;
      await inbound.drain(deadlineMs);
      // Deliveries and the last queue calls get what is left of the deadline: a broken queue must not hold the stop.
      // The listeners close even when the scheduler's last queue calls fail (a failed queue): else they outlive the stop.
      const rest = (async () => {
        try { await qmgr.stop(); } finally {
          clearInterval(tlsTimer);
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

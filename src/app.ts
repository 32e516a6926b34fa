/**
 * app — the composition root: builds every service from one Config and wires
 * them together (store, mailboxes, inbound listeners, scheduler, admin HTTP).
 *
 * Holds no protocol or queue logic of its own. `startApp` is what
 * `halcyon serve` and the integration tests call; `stop` drains in order
 * (listeners first, deliveries next, the store last).
 *
 * Reload (SIGHUP → `reload(next)`): the services read the configuration
 * through one live view (`live`), so settings read at the point of use change
 * at once without dropping a connection — routes, inbound limits and session
 * settings, relay networks, users, local domains and mailboxes, DKIM keys, outbound
 * connection caps, TLS policy, lease and scan interval, log level.
 * Settings captured when a service was built (listeners, data_dir, TLS
 * certificate, DNS, retry/backoff schedule, rate, timeouts, queue lifetime
 * and delay warning, the admin listener) need a restart; `reload` names them.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';
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
import { loadTlsContext } from './inbound/tls-cert.js';
import { LocalTransport } from './delivery/local-transport.js';
import { createResolver } from './delivery/resolve.js';
import { destinationKey } from './delivery/route.js';
import { SmtpTransport } from './delivery/smtp-transport.js';
import { localDestination } from './inbound/directory.js';
import { Mailboxes } from './local/maildir.js';
import { Qmgr } from './scheduler/qmgr.js';
import { domainOf } from './smtp/address.js';
import { createLogger } from './log.js';
import type { Queue } from './queue/store.js';
import { openQueue, usesPostgres } from './queue/open.js';
import { WorkerQueue } from './queue/worker-store.js';
import { assertQueueFit, markQueueCreated, queueFiles } from './queue/check.js';
import { QueueSpace } from './queue/space.js';
import { ConfigError } from './config/load.js';
import { Admin } from './http/admin.js';
import { Intake } from './intake/intake.js';
import { loadDkimKeys } from './intake/dkim-keys.js';
import { createAuthResolver } from './inbound/auth-dns.js';
import { AuthChecker } from './inbound/authcheck.js';
import { MtaSts } from './delivery/mta-sts.js';
import { Metrics } from './http/metrics.js';
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
  readonly smtp: SmtpTransport;
  readonly log: Logger;
  /** Where each listener is bound ("127.0.0.1:2525"), ports resolved. */
  readonly listening: readonly { kind: string; address: string }[];
  readonly metrics: Metrics;
  /** The queue operations behind the admin API (also for in-process tests). */
  readonly admin: Admin;
  /** Where the admin HTTP listener is bound, when enabled. */
  readonly httpAddress?: string;
  /** Applies a new, already validated configuration (SIGHUP); throws ConfigError and keeps the old one if it cannot. */
  reload(next: Config): Promise<ReloadResult>;
  stop(deadlineMs?: number): Promise<void>;
}

export interface ReloadResult {
  /** Top-level keys whose change needs a restart to take effect (they kept their old value). */
  readonly restartNeeded: string[];
}

/** Settings captured when a service is built: a reload cannot change them. */
const RESTART_ONLY: readonly [string, (c: Config) => unknown][] = [
  ['data_dir', (c) => c.data_dir], ['smtp.listen', (c) => c.smtp.listen], ['submission.listen', (c) => c.submission.listen], ['submission.tls_listen', (c) => c.submission.tls_listen],
  ['tls', (c) => c.tls], ['dns', (c) => c.dns], ['http', (c) => [c.http.listen, c.http.enabled]], ['log_format', (c) => c.log_format],
  ['delivery.retry_initial', (c) => c.delivery.retry_initial], ['delivery.retry_max', (c) => c.delivery.retry_max],
  ['delivery.destination_backoff', (c) => c.delivery.destination_backoff], ['delivery.destination_backoff_max', (c) => c.delivery.destination_backoff_max],
  ['delivery.destination_rate', (c) => c.delivery.destination_rate], ['delivery.timeouts', (c) => c.delivery.timeouts],
  ['delivery.connection_idle_timeout', (c) => c.delivery.connection_idle_timeout],
  ['delivery.max_queue_lifetime', (c) => c.delivery.max_queue_lifetime], ['delivery.delay_warning_after', (c) => c.delivery.delay_warning_after],
  ['delivery.tls_ca_file', (c) => c.delivery.tls_ca_file], ['delivery.mta_sts', (c) => c.delivery.mta_sts],
  ['hostname', (c) => c.hostname], ['node_id', (c) => c.node_id], ['queue', (c) => c.queue], ['postmaster', (c) => c.postmaster],
];

/**
 * A view of the current configuration that follows reloads: every property
 * read goes to `get()`'s object. (A Proxy, so the services keep their
 * `config: Config` type and read it at use time as they already do.)
 */
function liveConfig(get: () => Config): Config {
  return new Proxy({} as Config, {
    get: (_t, k) => Reflect.get(get(), k),
    has: (_t, k) => Reflect.has(get(), k),
    ownKeys: () => Reflect.ownKeys(get()),
    getOwnPropertyDescriptor: (_t, k) => {
      const d = Reflect.getOwnPropertyDescriptor(get(), k);
      return d && { ...d, configurable: true };
    },
  });
}

/** The same trick for the mailboxes, which a reload rebuilds from the new [[domains]]. */
function liveMailboxes(get: () => Mailboxes): Mailboxes {
  return new Proxy({} as Mailboxes, {
    get: (_t, k) => {
      const target = get();
      const v = Reflect.get(target, k) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
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

/** [delivery] tls_ca_file's certificates; a file that cannot be read is a configuration error. */
function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(undefined, [{ path: 'delivery.tls_ca_file', message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
}

export async function startApp(cfg: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.logger ?? createLogger({ level: cfg.log_level, format: cfg.log_format });
  const clock = opts.clock ?? Date.now;
  mkdirSync(cfg.data_dir, { recursive: true });
  const problems = httpConfigProblems(cfg);
  if (problems.length > 0) throw new ConfigError(undefined, problems);
  let current = cfg;
  const live = liveConfig(() => current);
  // The queue runs in its own thread: commits (fsync) never stall SMTP sessions, and share one commit per turn.
  // A damaged queue, or one that lost its file, is refused here rather than served (queue/check).
  // (A shared PostgreSQL queue has no file here to check.)
  if (!usesPostgres(cfg)) assertQueueFit(cfg.data_dir);
  // On a full disk the reserve is given up so the queue can open and deliver; new mail then waits (queue/space).
  const space = new QueueSpace(cfg.data_dir, () => sizeBytes(current.smtp.max_message_size));
  if (space.atStart().released) log.warn({ event: 'disk_full_at_start', data_dir: cfg.data_dir }, 'disk nearly full: released the queue reserve; new mail gets 452 4.3.1 until space returns');
  const store = await openQueue(cfg, { clock, server: true });
  if (!usesPostgres(cfg)) markQueueCreated(cfg.data_dir);
  // Logged once: from here new mail gets 451 4.3.0, nothing is claimed, /api/health says so, until restart.
  if (store instanceof WorkerQueue) store.onFailure((err) => {
    const file = queueFiles(cfg.data_dir).db;
    log.error({ event: 'queue_storage_failed', file, err: err.message },
      `queue storage failed (${file}): ${err.message}; new mail gets 451 4.3.0 and no delivery is started. Stop the server and run 'halcyon queue check' (then 'halcyon queue salvage' if it reports damage)`);
  });
  let currentMailboxes = new Mailboxes(cfg.domains, cfg.data_dir, { hostname: cfg.hostname });
  await currentMailboxes.refreshUsage();
  const mailboxes = liveMailboxes(() => currentMailboxes);
  const tlsContext = await loadTlsContext({ cert: cfg.tls.cert, key: cfg.tls.key, dataDir: cfg.data_dir, hostname: cfg.hostname });
  let users = new UserDirectory(cfg.users);
  // The directory answers every RCPT: it holds the current Mailboxes itself (rebuilt on reload), not the proxy.
  let directory = createDirectory(live, currentMailboxes);
  // Parsed once per configuration, not once per connection.
  const settingsOf = (c: Config) => ({ smtp: sessionSettings(c, 'smtp'), submission: sessionSettings(c, 'submission'), greetingDelayMs: durationMs(c.smtp.greeting_delay) });
  let settings = settingsOf(cfg);
  let mayRelayFrom = networkMatcher(cfg.relay.networks);
  const dnsblOf = (c: Config) => createDnsblChecker(c.inbound.dnsbl, { servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) }, log, clock);
  let dnsbl = dnsblOf(cfg);
  const anvil = new Anvil(() => ({
    connections: current.inbound.connection_rate_limit, messages: current.inbound.message_rate_limit, recipients: current.inbound.recipient_rate_limit,
  }), clock);
  /** One rate event; counted in /metrics (halcyon_messages_rejected_total{reason="rate_…"}) by the caller when over. */
  const over = (kind: RateKind, key: string): boolean => anvil.hit(kind, key).over;
  // Gauges read qmgr lazily: it is built below.
  const metrics = new Metrics({ store, clock, connections: () => qmgr.connections() });

  // The one door into the queue for new messages: sessions, injection and DSNs all go through it.
  let dkimKeys = loadDkimKeys(cfg.dkim);
  const intake = new Intake({ store: store.messages, hostname: () => current.hostname, clock, dkimKeys: () => dkimKeys });

  const resolver = createResolver({ servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) });
  // One cached resolver for what mailauth looks up: SPF/DKIM/DMARC/ARC inbound, the _mta-sts record outbound.
  const authDns = createAuthResolver({ servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) });
  const authChecker = new AuthChecker(() => current.hostname, authDns);
  const caFile = cfg.delivery.tls_ca_file ? readCaFile(cfg.delivery.tls_ca_file) : undefined;
  const mtaSts = cfg.delivery.mta_sts ? new MtaSts({ resolver: authDns, ca: caFile, hosts: () => live.delivery.mta_sts_hosts, clock }) : undefined;
  const smtp = new SmtpTransport({ config: live, resolver, log, clock, mtaSts, ...(caFile ? { ca: [...tls.rootCertificates, caFile] } : {}) });
  const local = new LocalTransport(mailboxes, log, () => live.inbound.quarantine === 'junk');
  const destinationOf = (address: string): string => {
    const domain = domainOf(address);
    return mailboxes.isLocalDomain(domain) ? localDestination(domain) : destinationKey(domain, live.routes);
  };
  const qmgr: Qmgr = new Qmgr({
    queue: store, smtp, local, config: live, log, clock, random: opts.random, node: cfg.node_id, shared: usesPostgres(cfg),
    storageFailed: () => store instanceof WorkerQueue && store.failure !== undefined,
    ...(resolver.mxHostSet ? { mxHostSet: resolver.mxHostSet } : {}),
    onOutcome: (status, _destination, latencyMs) => metrics.outcome(status, latencyMs),
    sweeps: {
      lifetimeMs: durationMs(cfg.delivery.max_queue_lifetime),
      delayWarningMs: durationMs(cfg.delivery.delay_warning_after),
      notify: { hostname: cfg.hostname, postmaster: cfg.postmaster, lifetimeMs: durationMs(cfg.delivery.max_queue_lifetime), destinationOf, isLocal: (d) => d.startsWith('local:') },
      intake,
      onEnqueued: () => qmgr.poke(),
      onExpired: () => metrics.outcome('expired', 0),
    },
  });

  // Shared by every session, kept across reloads: failures count per address, not per connection.
  const authThrottle = new AuthThrottle({
    get failureDelayMs() { return durationMs(current.smtp.auth_failure_delay); },
    get maxFailures() { return current.smtp.auth_max_failures; },
    get lockoutMs() { return durationMs(current.smtp.auth_lockout); },
  }, clock);
  const inbound = new InboundServer(
    {
      get maxConnections() { return current.smtp.max_connections; },
      get maxConnectionsPerIp() { return current.smtp.max_connections_per_ip; },
      get greetingDelayMs() { return settings.greetingDelayMs; },
      connectionRateExceeded: (ip) => {
        if (mayRelayFrom(ip) || !over('connections', ip)) return false;
        metrics.messageRejected('rate_connections');
        return true;
      },
    },
    (kind) => ({
      settings: settings[kind], intake, authChecker, users, directory, mayRelayFrom, tlsContext, log, authThrottle,
      acceptsMail: (size) => space.acceptsMail(size),
      ...(dnsbl.enabled ? { dnsbl: (ip: string) => dnsbl.check(ip) } : {}),
      rate: { messageOver: (ip: string) => over('messages', ip), recipientOver: (user: string) => over('recipients', user) },
      onMessage: () => { metrics.messageAccepted(); qmgr.poke(); },
      onReject: (reason) => metrics.messageRejected(reason),
    }),
    log,
    (kind) => metrics.inboundConnection(kind),
  );
  const admin = new Admin({
    store, intake, clock, storageFailure: () => (store instanceof WorkerQueue ? store.failure : undefined),
    maxMessageSize: () => sizeBytes(current.smtp.max_message_size),
    directory: () => directory,
    tlsReports: () => mtaSts?.reportCounts() ?? new Map(),
    destinationView: {
      gateOf: (q) => qmgr.destinations.known().get(q),
      domainsOf: (k) => qmgr.destinations.domainsOf(k),
      limits: (k, shared) => {
        // What another node (or this one before a restart) put on the row shows here too.
        qmgr.politeness.absorb(k, shared);
        return qmgr.politeness.view(k);
      },
      keys: () => qmgr.politeness.keys(),
    },
    poke: () => qmgr.poke(),
    onInjected: (id, req, trace) => {
      metrics.messageAccepted();
      log.info({ event: 'accepted', queue_id: id, from: req.from, nrcpt: req.to.length, size: req.content.length, ip: trace.clientIp, proto: trace.protocol }, 'message accepted');
    },
    onBounced: (id, addresses) => {
      for (const to of addresses) {
        metrics.outcome('bounced', 0);
        log.info({ event: 'delivery', queue_id: id, to, relay: 'none', dsn: '5.0.0', status: 'bounced', reply: '550 5.0.0 bounced by administrator', command: 'admin' },
          `${id}: to=<${to}> status=bounced (administrator)`);
      }
    },
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
      httpServer = await startHttpServer({ admin: admin, metrics, store, config: () => current, log, clock }, cfg.http.listen);
    } catch (err) {
      await inbound.close();
      await store.close();
      throw err;
    }
    listening.push({ kind: 'http', address: httpServer.address });
  }
  for (const l of listening) log.info({ event: 'listening', listener: l.kind, address: l.address }, `listening on ${l.address} (${l.kind})`);
  if (!opts.manualScheduler) await qmgr.start();

  async function reload(next: Config): Promise<ReloadResult> {
    const bad = httpConfigProblems(next);
    if (bad.length > 0) throw new ConfigError(undefined, bad);
    const restartNeeded = RESTART_ONLY.filter(([, f]) => JSON.stringify(f(next)) !== JSON.stringify(f(current))).map(([k]) => k);
    // Build everything first, so a failure leaves the old configuration whole.
    const nextMailboxes = new Mailboxes(next.domains, current.data_dir, { hostname: current.hostname });
    await nextMailboxes.refreshUsage();
    const nextUsers = new UserDirectory(next.users);
    const nextRelay = networkMatcher(next.relay.networks);
    const nextDkim = loadDkimKeys(next.dkim);
    // Restart-only settings keep their running values, so what is in force is what the services use.
    const kept = { ...next, data_dir: current.data_dir, smtp: { ...next.smtp, listen: current.smtp.listen }, submission: current.submission,
      tls: current.tls, dns: current.dns, http: { ...next.http, listen: current.http.listen, enabled: current.http.enabled },
      hostname: current.hostname, log_format: current.log_format };
    current = kept;
    currentMailboxes = nextMailboxes;
    users = nextUsers;
    mayRelayFrom = nextRelay;
    dkimKeys = nextDkim;
    dnsbl = dnsblOf(kept);
    directory = createDirectory(live, currentMailboxes);
    settings = settingsOf(kept);
    log.level = next.log_level;
    qmgr.poke();
    return { restartNeeded };
  }

  let stopped = false;
  return {
    get config() { return current; },
    store, mailboxes, qmgr, smtp, log, listening, metrics, admin: admin, httpAddress: httpServer?.address, reload,
    async stop(deadlineMs = 10_000) {
      if (stopped) return;
      stopped = true;
      const deadline = Date.now() + deadlineMs;
      await inbound.drain(deadlineMs);
      // Deliveries and the last queue calls get what is left of the deadline: a broken queue must not hold the stop.
      const rest = (async () => { await qmgr.stop(); await httpServer?.close(); await smtp.close(); })().catch((err: unknown) => {
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

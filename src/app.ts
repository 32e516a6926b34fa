/**
 * app — the composition root: builds every service from one Config and wires
 * them together (store, mailboxes, inbound listeners, scheduler, admin HTTP).
 *
 * Holds no protocol or queue logic of its own. `startApp` is what
 * `halcyon serve` and the integration tests call; `stop` drains in order
 * (listeners first, deliveries next, the store last).
 */
import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { durationMs, sizeBytes } from './config/units.js';
import { UserDirectory } from './inbound/auth.js';
import { createDirectory } from './inbound/directory.js';
import { networkMatcher } from './inbound/policy.js';
import { InboundServer, type ListenerSpec } from './inbound/server.js';
import type { SessionSettings } from './inbound/session.js';
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
import { openSqliteStore, type SqliteStore } from './queue/sqlite-store.js';

export interface AppOptions {
  readonly logger?: Logger;
  readonly clock?: () => number;
  /** Don't start the scheduler's timer loop (tests drive `qmgr.runOnce()` themselves). */
  readonly manualScheduler?: boolean;
  readonly random?: () => number;
}

export interface App {
  readonly config: Config;
  readonly store: SqliteStore;
  readonly mailboxes: Mailboxes;
  readonly qmgr: Qmgr;
  readonly smtp: SmtpTransport;
  readonly log: Logger;
  /** Where each listener is bound ("127.0.0.1:2525"), ports resolved. */
  readonly listening: readonly { kind: string; address: string }[];
  stop(deadlineMs?: number): Promise<void>;
}

export function sessionSettings(cfg: Config, kind: 'smtp' | 'submission'): SessionSettings {
  return {
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

export async function startApp(cfg: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.logger ?? createLogger({ level: cfg.log_level, format: cfg.log_format });
  const clock = opts.clock ?? Date.now;
  mkdirSync(cfg.data_dir, { recursive: true });
  const store = await openSqliteStore({ dataDir: cfg.data_dir, clock });
  const mailboxes = new Mailboxes(cfg.domains, cfg.data_dir, { hostname: cfg.hostname });
  await mailboxes.refreshUsage();
  const tlsContext = await loadTlsContext({ cert: cfg.tls.cert, key: cfg.tls.key, dataDir: cfg.data_dir, hostname: cfg.hostname });
  const users = new UserDirectory(cfg.users);
  const directory = createDirectory(cfg, mailboxes);
  const mayRelayFrom = networkMatcher(cfg.relay.networks);

  const resolver = createResolver({ servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) });
  const smtp = new SmtpTransport({ config: cfg, resolver, log, clock });
  const local = new LocalTransport(mailboxes, log);
  const destinationOf = (address: string): string => {
    const domain = domainOf(address);
    return mailboxes.isLocalDomain(domain) ? localDestination(domain) : destinationKey(domain, cfg.routes);
  };
  const qmgr: Qmgr = new Qmgr({
    store, smtp, local, config: cfg, log, clock, random: opts.random, owner: `${cfg.hostname}:${process.pid}`,
    sweeps: {
      lifetimeMs: durationMs(cfg.delivery.max_queue_lifetime),
      delayWarningMs: durationMs(cfg.delivery.delay_warning_after),
      notify: { hostname: cfg.hostname, postmaster: cfg.postmaster, lifetimeMs: durationMs(cfg.delivery.max_queue_lifetime), destinationOf, isLocal: (d) => d.startsWith('local:') },
      onEnqueued: () => qmgr.poke(),
    },
  });

  const inbound = new InboundServer(
    { maxConnections: cfg.smtp.max_connections, maxConnectionsPerIp: cfg.smtp.max_connections_per_ip, greetingDelayMs: durationMs(cfg.smtp.greeting_delay) },
    (kind) => ({ settings: sessionSettings(cfg, kind), store, users, directory, mayRelayFrom, tlsContext, log, now: clock, onMessage: () => qmgr.poke() }),
    log,
  );
  const specs: ListenerSpec[] = [
    ...cfg.smtp.listen.map((address) => ({ address, kind: 'smtp' as const })),
    ...cfg.submission.listen.map((address) => ({ address, kind: 'submission' as const })),
  ];
  let listening: { kind: string; address: string }[];
  try {
    listening = await inbound.listen(specs);
  } catch (err) {
    await inbound.close();
    await store.close();
    throw err;
  }
  for (const l of listening) log.info({ event: 'listening', listener: l.kind, address: l.address }, `listening on ${l.address} (${l.kind})`);
  if (!opts.manualScheduler) await qmgr.start();

  let stopped = false;
  return {
    config: cfg, store, mailboxes, qmgr, smtp, log, listening,
    async stop(deadlineMs = 10_000) {
      if (stopped) return;
      stopped = true;
      await inbound.drain(deadlineMs);
      await qmgr.stop();
      await smtp.close();
      await store.close();
    },
  };
}

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
import { Mailboxes } from './local/maildir.js';
import { createLogger } from './log.js';
import { openSqliteStore, type SqliteStore } from './queue/sqlite-store.js';

export interface AppOptions {
  readonly logger?: Logger;
  readonly clock?: () => number;
}

export interface App {
  readonly config: Config;
  readonly store: SqliteStore;
  readonly mailboxes: Mailboxes;
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

  const inbound = new InboundServer(
    { maxConnections: cfg.smtp.max_connections, maxConnectionsPerIp: cfg.smtp.max_connections_per_ip, greetingDelayMs: durationMs(cfg.smtp.greeting_delay) },
    (kind) => ({ settings: sessionSettings(cfg, kind), store, users, directory, mayRelayFrom, tlsContext, log, now: clock }),
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

  let stopped = false;
  return {
    config: cfg, store, mailboxes, log, listening,
    async stop(deadlineMs = 10_000) {
      if (stopped) return;
      stopped = true;
      await inbound.drain(deadlineMs);
      await store.close();
    },
  };
}

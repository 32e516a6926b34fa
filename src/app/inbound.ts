/**
 * app/inbound — builds the SMTP listeners' side, in two parts:
 *
 * - `localNode`: what is decided once per node, on the main thread: the
 *   connection counts and rates (admission, anvil), the AUTH throttle,
 *   recipient verification (its probes use the scheduler's destinations),
 *   the queue's health, and the counting of what sessions accept and refuse.
 *   SMTP session workers ask it over their port (app/session-workers).
 * - `buildInbound`: what each thread that runs sessions builds for itself:
 *   the DNSBL checker, SPF/DKIM checking, the RCPT suppression look-ups, and
 *   the per-connection session dependencies handed to each new session (one
 *   snapshot of the live configuration per connection), over a NodeSide.
 *
 * Holds no SMTP logic (inbound/session does); only the wiring.
 */
import type { Logger } from 'pino';
import type tls from 'node:tls';
import { detailOf, type ErrorCode } from '../errors.js';
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import type { Live } from '../config/live.js';
import { Anvil, type RateKind } from '../inbound/anvil.js';
import { AuthThrottle, type AuthLimiter } from '../inbound/auth-throttle.js';
import { AuthChecker } from '../inbound/authcheck.js';
import type { createAuthResolver } from '../inbound/auth-dns.js';
import { createDnsblChecker } from '../inbound/dnsbl.js';
import { InboundServer, localGate, type ConnectionGate } from '../inbound/server.js';
import type { SessionDeps } from '../inbound/session-deps.js';
import type { Verifier } from '../inbound/verifier.js';
import type { RcptAnswer } from '../inbound/verify-policy.js';
import { Intake } from '../intake/intake.js';
import type { Metrics } from '../http/metrics.js';
import type { MessageStore } from '../queue/message-store.js';
import type { Queue } from '../queue/store.js';
import type { QueueSpace } from '../queue/space.js';
import type { SuppressionList } from '../queue/suppression.js';
import { suppressionKey } from '../queue/suppression.js';
import { coalesced } from '../queue/coalesce.js';
import type { Running } from './running.js';

/** What a thread running sessions asks the node (answered on this thread, or by the main thread for a worker). */
export interface NodeSide {
  readonly gate: ConnectionGate;
  readonly rate: NonNullable<SessionDeps['rate']>;
  readonly authThrottle: AuthLimiter;
  verifyRecipient(address: string, domain: string): Promise<RcptAnswer>;
  /** Why the queue cannot take mail now (queue/health), as the error code the reply comes from. */
  queueTrouble(): ErrorCode | undefined;
  /** A message was accepted: counted, and the scheduler woken. */
  accepted(tenant: string | undefined): void;
  rejected(reason: string): void;
  /** `worker`: the session worker that took it (app/session-workers), when sessions run on workers. */
  connection(kind: string, worker?: number): void;
}

/** The one door into the queue for new messages (sessions, injection and DSNs), on whichever thread holds `messages`. */
export function intakeFor(live: Live<Running>, messages: MessageStore, clock: () => number): Intake {
  const config = (): Config => live.current.config;
  return new Intake({
    store: messages, hostname: () => config().hostname, clock, dkimKeys: () => live.current.dkimKeys, arcKeys: () => live.current.arcKeys,
    // An AUTH user's tenant: its [[users]] tenant, else its name (intake/intake senderOf).
    tenantOf: (user) => config().users.find((u) => u.name === user)?.tenant ?? user,
  });
}

/** The node's side, on the main thread. */
export function localNode(deps: {
  live: Live<Running>; clock: () => number; metrics: Metrics; store: Queue; verifier: Verifier;
  /** A message was accepted: wake the scheduler. */
  onMessage: () => void;
}): NodeSide {
  const { live, clock, metrics } = deps;
  const config = (): Config => live.current.config;
  const anvil = new Anvil(() => ({
    connections: config().inbound.connection_rate_limit, messages: config().inbound.message_rate_limit, recipients: config().inbound.recipient_rate_limit,
  }), clock);
  /** One rate event; counted in /metrics (halcyon_messages_rejected_total{reason="rate_…"}) by the caller when over. */
  const over = (kind: RateKind, key: string): boolean => anvil.hit(kind, key).over;
  const gate = localGate({
    get maxConnections() { return config().smtp.max_connections; },
    get maxConnectionsPerIp() { return config().smtp.max_connections_per_ip; },
    greetingDelayMs: 0, // the listener's own
    connectionRateExceeded: (ip) => {
      if (live.current.mayRelayFrom(ip) || !over('connections', ip)) return false;
      metrics.messageRejected('rate_connections');
      return true;
    },
  });
  return {
    gate,
    rate: { messageOver: (ip) => over('messages', ip), recipientOver: (user) => over('recipients', user) },
    // Shared by every session, kept across reloads: failures count per address, not per connection.
    authThrottle: new AuthThrottle({
      get failureDelayMs() { return durationMs(config().smtp.auth_failure_delay); },
      get maxFailures() { return config().smtp.auth_max_failures; },
      get lockoutMs() { return durationMs(config().smtp.auth_lockout); },
    }, clock),
    verifyRecipient: (address, domain) => deps.verifier.check(address, domain),
    queueTrouble: () => deps.store.health.problem?.code,
    accepted: (tenant) => { metrics.messageAccepted(tenant); deps.onMessage(); },
    rejected: (reason) => metrics.messageRejected(reason),
    connection: (kind, worker) => metrics.inboundConnection(kind, worker),
  };
}

export function buildInbound(cfg: Config, deps: {
  live: Live<Running>; log: Logger; clock: () => number; intake: Intake; suppressions: SuppressionList; space: QueueSpace;
  tlsContext: tls.SecureContext; authDns: ReturnType<typeof createAuthResolver>; node: NodeSide;
}): InboundServer {
  const { live, log, clock, node } = deps;
  // The RCPTs of every session asked in one event-loop turn: one look at the list (queue/coalesce).
  const suppressedNow = coalesced((addresses: readonly string[]) => deps.suppressions.suppressed(addresses, clock()));
  const config = (): Config => live.current.config;
  // The DNSBL checker is built from the live [inbound] settings per configuration; its resolver settings are the start's.
  const dnsblOf = (c: Config) => createDnsblChecker(c.inbound.dnsbl, { servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) }, log, clock);
  let dnsbl = { of: live.current.config, checker: dnsblOf(live.current.config) };
  const dnsblNow = () => (dnsbl.of === config() ? dnsbl.checker : (dnsbl = { of: config(), checker: dnsblOf(config()) }).checker);
  const authChecker = new AuthChecker(() => config().hostname, deps.authDns);
  return new InboundServer(
    {
      get maxConnections() { return config().smtp.max_connections; },
      get maxConnectionsPerIp() { return config().smtp.max_connections_per_ip; },
      get greetingDelayMs() { return live.current.settings.greetingDelayMs; },
    },
    (kind) => {
      // One snapshot per connection: a session keeps the settings it started with.
      const r = live.current;
      const dnsblChecker = dnsblNow();
      return {
        settings: r.settings[kind], intake: deps.intake, authChecker, users: r.users, directory: r.directory, mayRelayFrom: r.mayRelayFrom,
        tlsContext: deps.tlsContext, log, authThrottle: node.authThrottle,
        acceptsMail: (size) => deps.space.acceptsMail(size),
        queueTrouble: () => node.queueTrouble(),
        ...(dnsblChecker.enabled ? { dnsbl: (ip: string) => dnsblChecker.check(ip) } : {}),
        verifyRecipient: (address: string, domain: string) => node.verifyRecipient(address, domain),
        // A list that cannot be read refuses nothing: the scheduler checks again before delivery.
        suppressed: async (address: string) => (r.config.suppression.enabled
          ? (await suppressedNow(address).catch((err: unknown) => {
            log.warn({ event: 'suppression_read_failed', to: address, err: detailOf(err) }, `could not read the suppression list at RCPT: ${detailOf(err)}`);
            return new Map<string, never>();
          })).get(suppressionKey(address)) : undefined),
        rate: node.rate,
        onMessage: (m) => node.accepted(m.tenant),
        onReject: (reason) => node.rejected(reason),
      };
    },
    log,
    (kind) => node.connection(kind),
    node.gate,
  );
}

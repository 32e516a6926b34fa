/**
 * app/inbound — builds the SMTP listeners' side: the connection and rate
 * limits (anvil), the DNSBL checker, the AUTH throttle, SPF/DKIM/DMARC
 * checking, and the per-connection session dependencies handed to each new
 * session (one snapshot of the live configuration per connection).
 *
 * Holds no SMTP logic (inbound/session does); only the wiring.
 */
import type { Logger } from 'pino';
import type tls from 'node:tls';
import { detailOf } from '../errors.js';
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import type { Live } from '../config/live.js';
import { Anvil, type RateKind } from '../inbound/anvil.js';
import { AuthThrottle } from '../inbound/auth-throttle.js';
import { AuthChecker } from '../inbound/authcheck.js';
import type { createAuthResolver } from '../inbound/auth-dns.js';
import { createDnsblChecker } from '../inbound/dnsbl.js';
import { InboundServer } from '../inbound/server.js';
import type { Verifier } from '../inbound/verifier.js';
import type { Intake } from '../intake/intake.js';
import type { Metrics } from '../http/metrics.js';
import type { Queue } from '../queue/store.js';
import type { QueueSpace } from '../queue/space.js';
import { suppressionKey } from '../queue/suppression.js';
import { coalesced } from '../queue/coalesce.js';
import type { Running } from './running.js';

export function buildInbound(cfg: Config, deps: {
  live: Live<Running>; log: Logger; clock: () => number; metrics: Metrics; intake: Intake; store: Queue; space: QueueSpace;
  verifier: Verifier; tlsContext: tls.SecureContext; authDns: ReturnType<typeof createAuthResolver>;
  /** A message was accepted: wake the scheduler. */
  onMessage: () => void;
}): InboundServer {
  const { live, log, clock, metrics, store } = deps;
  // The RCPTs of every session asked in one event-loop turn: one look at the list (queue/coalesce).
  const suppressedNow = coalesced((addresses: readonly string[]) => store.suppressions.suppressed(addresses, clock()));
  const config = (): Config => live.current.config;
  // The DNSBL checker is built from the live [inbound] settings per configuration; its resolver settings are the start's.
  const dnsblOf = (c: Config) => createDnsblChecker(c.inbound.dnsbl, { servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) }, log, clock);
  let dnsbl = { of: live.current.config, checker: dnsblOf(live.current.config) };
  const dnsblNow = () => (dnsbl.of === config() ? dnsbl.checker : (dnsbl = { of: config(), checker: dnsblOf(config()) }).checker);
  const anvil = new Anvil(() => ({
    connections: config().inbound.connection_rate_limit, messages: config().inbound.message_rate_limit, recipients: config().inbound.recipient_rate_limit,
  }), clock);
  /** One rate event; counted in /metrics (halcyon_messages_rejected_total{reason="rate_…"}) by the caller when over. */
  const over = (kind: RateKind, key: string): boolean => anvil.hit(kind, key).over;
  const authChecker = new AuthChecker(() => config().hostname, deps.authDns);
  // Shared by every session, kept across reloads: failures count per address, not per connection.
  const authThrottle = new AuthThrottle({
    get failureDelayMs() { return durationMs(config().smtp.auth_failure_delay); },
    get maxFailures() { return config().smtp.auth_max_failures; },
    get lockoutMs() { return durationMs(config().smtp.auth_lockout); },
  }, clock);
  return new InboundServer(
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
        settings: r.settings[kind], intake: deps.intake, authChecker, users: r.users, directory: r.directory, mayRelayFrom: r.mayRelayFrom,
        tlsContext: deps.tlsContext, log, authThrottle,
        acceptsMail: (size) => deps.space.acceptsMail(size),
        queueTrouble: () => store.health.problem?.code,
        ...(dnsblChecker.enabled ? { dnsbl: (ip: string) => dnsblChecker.check(ip) } : {}),
        verifyRecipient: (address: string, domain: string) => deps.verifier.check(address, domain),
        // A list that cannot be read refuses nothing: the scheduler checks again before delivery.
        suppressed: async (address: string) => (r.config.suppression.enabled
          ? (await suppressedNow(address).catch((err: unknown) => {
            log.warn({ event: 'suppression_read_failed', to: address, err: detailOf(err) }, `could not read the suppression list at RCPT: ${detailOf(err)}`);
            return new Map<string, never>();
          })).get(suppressionKey(address)) : undefined),
        rate: { messageOver: (ip: string) => over('messages', ip), recipientOver: (user: string) => over('recipients', user) },
        onMessage: (m) => { metrics.messageAccepted(m.tenant); deps.onMessage(); },
        onReject: (reason) => metrics.messageRejected(reason),
      };
    },
    log,
    (kind) => metrics.inboundConnection(kind),
  );
}

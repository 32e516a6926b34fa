/**
 * app/outbound — builds the SMTP client side from the configuration: the
 * resolver, the cached resolver mailauth uses, MTA-STS, DANE (behind its
 * DNSSEC self-test), the TLS-RPT session counter and the SMTP transport.
 *
 * Decides nothing about delivery (that is delivery/ and destination/); it
 * only wires those parts with the settings captured at start.
 */
import { Resolver as DnsResolver } from 'node:dns';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import { ConfigError } from '../config/load.js';
import { createResolver } from '../delivery/resolve.js';
import { SmtpTransport, type TransportShaping } from '../delivery/smtp-transport.js';
import { MtaSts } from '../delivery/mta-sts.js';
import { Dane } from '../delivery/dane.js';
import { daneSelfTest } from '../delivery/dane-selftest.js';
import { createDnssecQuery } from '../delivery/dnssec-query.js';
import { TlsRptRecorder } from '../delivery/tls-sessions.js';
import { createAuthResolver } from '../inbound/auth-dns.js';
import type { Metrics } from '../http/metrics.js';
import type { Queue } from '../queue/store.js';

export interface Outbound {
  readonly resolver: ReturnType<typeof createResolver>;
  /** One cached resolver for what mailauth looks up: SPF/DKIM/DMARC/ARC inbound, the _mta-sts record outbound. */
  readonly authDns: ReturnType<typeof createAuthResolver>;
  readonly smtp: SmtpTransport;
  readonly tlsRecorder: TlsRptRecorder;
  /** The trusted CAs when [delivery] tls_ca_file adds some (else Node's defaults). */
  readonly ca?: string[];
  /** Starts the DANE self-test (once); MX deliveries wait for its verdict. */
  readonly startDane: () => Promise<Dane | undefined>;
}

export function buildOutbound(cfg: Config, deps: {
  config: () => Config; log: Logger; clock: () => number; metrics: Metrics; store: Queue;
  /** Provider presets (destination/providers): per-provider TLS, messages per connection, no next MX after a pausing reply. */
  shaping?: TransportShaping;
}): Outbound {
  const { config, log, clock, metrics } = deps;
  const dns = { servers: cfg.dns.servers, timeoutMs: durationMs(cfg.dns.timeout) };
  const resolver = createResolver(dns);
  const authDns = createAuthResolver(dns);
  const caFile = cfg.delivery.tls_ca_file ? readCaFile(cfg.delivery.tls_ca_file) : undefined;
  const ca = caFile ? [...tls.rootCertificates, caFile] : undefined;
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
    mode: cfg.delivery.dane, ...dns,
    signed: cfg.dns.selftest_signed, bogus: cfg.dns.selftest_bogus, system: new DnsResolver().getServers(), makeQuery: createDnssecQuery,
    report: (r) => {
      if (r.on) log.info({ event: 'dane_selftest', dane: 'on', detail: r.detail }, `DANE on: ${r.detail}`);
      else log.error({ event: 'dane_selftest', dane: 'off', reason: r.reason }, `DANE OFF: the DNSSEC self-test failed: ${r.reason}. Mail to DANE domains goes out with opportunistic TLS (or MTA-STS) until this is fixed and Halcyon restarted`);
    },
  });
  let daneReady: Promise<Dane | undefined> | undefined;
  const startDane = (): Promise<Dane | undefined> => (daneReady ??= daneQuery().then((q) => (q ? new Dane(q) : undefined)));
  const tlsRecorder = new TlsRptRecorder(deps.store.tlsReports, clock);
  const smtp = new SmtpTransport({
    config, resolver, log, clock, mtaSts, dane: startDane, tlsRpt: tlsRecorder, ...(ca ? { ca } : {}), ...(deps.shaping ? { shaping: deps.shaping } : {}),
  });
  return { resolver, authDns, smtp, tlsRecorder, startDane, ...(ca ? { ca } : {}) };
}

/** [delivery] tls_ca_file's certificates; a file that cannot be read is a configuration error. */
function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(undefined, [{ path: 'delivery.tls_ca_file', message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
}

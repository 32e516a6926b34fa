/**
 * app/tls-rpt — starts the daily TLS-RPT report sender beside delivery
 * (tlsrpt/sender): looked for every [tls_rpt] interval, a failure logged.
 *
 * Sends nothing by itself when [tls_rpt] send is off (the sender asks).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { durationMs } from '../config/units.js';
import type { TlsRptRecorder } from '../delivery/tls-sessions.js';
import type { createAuthResolver } from '../inbound/auth-dns.js';
import type { Intake } from '../intake/intake.js';
import type { Queue } from '../queue/store.js';
import { TlsRptSender } from '../tlsrpt/sender.js';

export function startTlsRpt(cfg: Config, deps: {
  config: () => Config; store: Queue; recorder: TlsRptRecorder; authDns: ReturnType<typeof createAuthResolver>; intake: Intake;
  log: Logger; clock: () => number; destinationOf: (address: string) => string; ca?: string[];
  /** No timer: tests drive `sender.runOnce()` themselves. */
  manual: boolean;
}): { sender: TlsRptSender; stop: () => void } {
  const { config, log } = deps;
  const sender = new TlsRptSender({
    store: deps.store.tlsReports, resolver: deps.authDns, intake: deps.intake, log, node: cfg.node_id, clock: deps.clock, destinationOf: deps.destinationOf,
    ...(deps.ca ? { ca: deps.ca } : {}),
    settings: () => {
      const c = config();
      return { send: c.tls_rpt.send, organization: c.tls_rpt.organization ?? c.hostname, contact: c.tls_rpt.contact ?? c.postmaster, from: c.tls_rpt.from ?? c.postmaster, submitter: c.hostname };
    },
  });
  const timer = deps.manual ? undefined : setInterval(() => {
    void deps.recorder.flush().then(() => sender.runOnce()).catch((err: unknown) => log.warn({ event: 'tls_report', err: (err as Error).message }, 'TLS-RPT: could not look for reports to send'));
  }, durationMs(cfg.tls_rpt.interval));
  timer?.unref();
  return { sender, stop: () => clearInterval(timer) };
}

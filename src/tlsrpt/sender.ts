/**
 * tlsrpt/sender — sends the daily TLS-RPT aggregate reports (RFC 8460): every
 * `runOnce` claims the domain-days that are over (queue/tls-reports; on
 * several nodes each is sent by one), asks `_smtp._tls.DOMAIN` where the
 * domain wants its reports, builds the report (tlsrpt/report), gzips it, and
 * sends it to every `rua`: `https:` URIs get a POST of the gzipped JSON
 * (`Content-Type: application/tlsrpt+gzip`, §5.4; the certificate checked
 * against the system roots plus `[delivery] tls_ca_file`, the host name
 * resolved through `[dns] servers`), `mailto:` addresses one message
 * through intake (tlsrpt/mail; DKIM-signed there when the From domain has a
 * key), delivered like any other mail.
 *
 * | the domain-day                                   | then                                           |
 * |--------------------------------------------------|------------------------------------------------|
 * | `[tls_rpt] send = false`                         | dropped (counts kept for `halcyon destinations` only until then) |
 * | no (or no single) TLSRPTv1 record                | dropped                                        |
 * | at least one rua took it (2xx, or mail queued)   | done: its counts removed                       |
 * | every rua failed, fewer than 5 tries             | tried again in (tries × 1 h)                   |
 * | every rua failed, 5 tries                        | dropped, logged                                |
 *
 * Does not count sessions (delivery/tls-sessions) nor deliver the mail (the queue does).
 */
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import type { Intake, Submission } from '../intake/intake.js';
import type { TlsReportStore, TlsReportClaimed } from '../queue/tls-reports.js';
import { resolverLookup, type AuthResolverFn } from '../delivery/resolver-lookup.js';
import { utcDay } from '../delivery/tls-sessions.js';
import { reportMessage } from './mail.js';
import { buildReport, parseTlsRptRecords, reportFileName } from './report.js';

export interface TlsRptSettings {
  readonly send: boolean;
  readonly organization: string;
  readonly contact: string;
  readonly from: string;
  /** Our name: the report's submitter. */
  readonly submitter: string;
}

export interface TlsRptSenderDeps {
  readonly store: TlsReportStore;
  readonly resolver: AuthResolverFn;
  readonly intake: Pick<Intake, 'accept'>;
  readonly settings: () => TlsRptSettings;
  /** The destination key of a recipient address (routes apply). */
  readonly destinationOf: (address: string) => string;
  readonly log: Logger;
  readonly node: string;
  readonly clock: () => number;
  readonly ca?: readonly string[];
  readonly timeoutMs?: number;
}

export type ReportOutcome = 'sent' | 'disabled' | 'no-policy' | 'retry' | 'given-up';

export interface SentReport {
  readonly day: string;
  readonly policyDomain: string;
  readonly outcome: ReportOutcome;
  /** Where it went ("https://…", "mailto:…"), or why not. */
  readonly detail: string;
}

const MAX_TRIES = 5;
const LEASE_MS = 10 * 60_000;

export class TlsRptSender {
  private readonly lookup;

  constructor(private readonly d: TlsRptSenderDeps) {
    this.lookup = resolverLookup(d.resolver, 'TLS-RPT report');
  }

  /** Sends what is due at `now` (default: the clock). */
  async runOnce(now = this.d.clock()): Promise<SentReport[]> {
    const claimed = await this.d.store.claimTlsReports({ before: utcDay(now), now, owner: this.d.node, leaseUntil: now + LEASE_MS, limit: 50 });
    const out: SentReport[] = [];
    // Bounded by the claim's limit.
    for (const c of claimed) out.push(await this.one(c, now));
    return out;
  }

  private async one(c: TlsReportClaimed, now: number): Promise<SentReport> {
    const s = this.d.settings();
    const done = async (outcome: ReportOutcome, detail: string): Promise<SentReport> => {
      if (outcome === 'retry') await this.d.store.retryTlsReport(c.day, c.policyDomain, this.d.node, now + (c.attempts + 1) * 3_600_000);
      else await this.d.store.finishTlsReport(c.day, c.policyDomain);
      const r = { day: c.day, policyDomain: c.policyDomain, outcome, detail };
      this.d.log[outcome === 'sent' || outcome === 'disabled' || outcome === 'no-policy' ? 'info' : 'warn']({ event: 'tls_report', ...r }, `TLS-RPT report of ${c.policyDomain} for ${c.day}: ${outcome} (${detail})`);
      return r;
    };
    if (!s.send) return done('disabled', '[tls_rpt] send = false');
    let txt: string[];
    try {
      txt = (await this.d.resolver(`_smtp._tls.${c.policyDomain}`, 'TXT')).map((r) => (Array.isArray(r) ? r.join('') : String(r)));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return done('no-policy', `no _smtp._tls record`);
      return c.attempts + 1 >= MAX_TRIES ? done('given-up', `DNS: ${(err as Error).message}`) : done('retry', `DNS: ${(err as Error).message}`);
    }
    const rua = parseTlsRptRecords(txt);
    if (!rua) return done('no-policy', 'no single TLSRPTv1 record with a rua');
    const uniqueId = randomBytes(8).toString('hex');
    const reportId = `${c.day}.${uniqueId}@${s.submitter}`;
    const report = buildReport(c.day, c.policyDomain, c.rows, { organization: s.organization, contact: s.contact, reportId });
    const gzipped = gzipSync(Buffer.from(JSON.stringify(report), 'utf8'));
    const fileName = reportFileName(s.submitter, c.policyDomain, c.day, uniqueId);
    const took: string[] = [];
    const failed: string[] = [];
    for (const url of rua.https) {
      const err = await this.post(url, gzipped).then(() => undefined, (e: unknown) => (e instanceof Error ? e.message : String(e)));
      if (err === undefined) took.push(url); else failed.push(`${url}: ${err}`);
    }
    if (rua.mailto.length > 0) {
      const sub: Submission = {
        origin: 'report', sender: s.from, params: { smtputf8: false },
        trace: { clientIp: '127.0.0.1', clientHelo: s.submitter, protocol: 'TLSRPT' },
        content: reportMessage({ from: s.from, to: rua.mailto, policyDomain: c.policyDomain, submitter: s.submitter, reportId, fileName, gzipped, now }),
        recipients: rua.mailto.map((address) => ({ address, destination: this.d.destinationOf(address), notify: 'NEVER' })),
      };
      try {
        const a = await this.d.intake.accept(sub);
        took.push(...rua.mailto.map((m) => `mailto:${m} (queued as ${a.id})`));
      } catch (err) {
        failed.push(`mailto: ${(err as Error).message}`);
      }
    }
    if (took.length > 0) return done('sent', [...took, ...failed].join('; '));
    return c.attempts + 1 >= MAX_TRIES ? done('given-up', failed.join('; ')) : done('retry', failed.join('; '));
  }

  private post(url: string, body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = https.request(url, {
        method: 'POST', headers: { 'content-type': 'application/tlsrpt+gzip', 'content-length': body.length },
        ...(this.d.ca ? { ca: [...this.d.ca] } : {}), rejectUnauthorized: true, timeout: this.d.timeoutMs ?? 30_000, lookup: this.lookup,
      }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve(); else reject(new Error(`HTTP ${code}`));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }
}

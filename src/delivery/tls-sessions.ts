/**
 * delivery/tls-sessions — counts TLS sessions under a policy (MTA-STS or DANE) for
 * the daily TLS-RPT reports: each session adds one to its (UTC day, policy
 * domain, policy, result, receiving host) figure in memory, and the figures
 * are added to the queue store (queue/tls-reports) every `flushMs` and at
 * close — one write per interval, not per session. A failed write keeps the
 * figures for the next one. What was counted since the last write is lost
 * if the process dies (a report is statistics, not mail).
 *
 * Does not decide a session's result type (delivery/tls-result-type) nor build or
 * send reports (tlsrpt/sender).
 */
import { tlsCountKey, type TlsPolicyType, type TlsReportStore, type TlsSessionCount } from '../queue/tls-reports.js';

export interface TlsSession {
  readonly policyDomain: string;
  readonly policyType: TlsPolicyType;
  readonly policyStrings: readonly string[];
  readonly mxHosts: readonly string[];
  /** undefined: the session succeeded. */
  readonly resultType?: string;
  readonly receivingMx?: string;
  readonly receivingIp?: string;
}

/** "2026-12-06": the UTC day of an instant. */
export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export class TlsRptRecorder {
  private pending = new Map<string, TlsSessionCount>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly store: Pick<TlsReportStore, 'countTlsSessions'>, private readonly clock: () => number, flushMs = 30_000) {
    if (flushMs > 0) {
      this.timer = setInterval(() => void this.flush(), flushMs);
      this.timer.unref();
    }
  }

  /** Counts one session. */
  session(s: TlsSession): void {
    const row: TlsSessionCount = {
      day: utcDay(this.clock()), policyDomain: s.policyDomain.toLowerCase(), policyType: s.policyType,
      policyStrings: s.policyStrings, mxHosts: s.mxHosts, resultType: s.resultType ?? '',
      // Successes are summed per policy only; failures per receiving host (RFC 8460 §4.3: failure details name it).
      receivingMx: s.resultType ? s.receivingMx ?? '' : '', receivingIp: s.resultType ? s.receivingIp ?? '' : '', sessions: 1,
    };
    const key = tlsCountKey(row);
    const had = this.pending.get(key);
    this.pending.set(key, had ? { ...row, sessions: had.sessions + 1 } : row);
  }

  /** Writes what was counted; resolves when written (or kept for the next try). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        await this.store.countTlsSessions([...batch.values()]);
      } catch {
        // Kept for the next flush, added to whatever was counted meanwhile.
        for (const [k, v] of batch) {
          const now = this.pending.get(k);
          this.pending.set(k, now ? { ...now, sessions: now.sessions + v.sessions } : v);
        }
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}

/** RFC 8460 §4.3.1: an MTA-STS policy as its lines. */
export function stsPolicyStrings(p: { readonly mode: string; readonly mx: readonly string[]; readonly maxAgeS: number }): string[] {
  return ['version: STSv1', `mode: ${p.mode}`, ...p.mx.map((m) => `mx: ${m}`), `max_age: ${p.maxAgeS}`];
}

/** A session under `domain`'s MTA-STS policy; `failure` names the result type and the host when it failed. */
export function stsSession(domain: string, p: { readonly mode: string; readonly mx: readonly string[]; readonly maxAgeS: number },
  failure?: { readonly resultType: string; readonly host?: string; readonly ip?: string }): TlsSession {
  return {
    policyDomain: domain, policyType: 'sts', policyStrings: stsPolicyStrings(p), mxHosts: [...p.mx],
    ...(failure ? { resultType: failure.resultType, receivingMx: failure.host ?? '', receivingIp: failure.ip ?? '' } : {}),
  };
}

/** A session under an MX host's DANE TLSA records (the policy domain is the host, RFC 8460 §3). */
export function daneSession(host: string, records: readonly string[], failure?: { readonly resultType: string; readonly ip?: string }): TlsSession {
  return {
    policyDomain: host, policyType: 'tlsa', policyStrings: records, mxHosts: [host],
    ...(failure ? { resultType: failure.resultType, receivingMx: host, receivingIp: failure.ip ?? '' } : {}),
  };
}

/** What `halcyon destinations` shows per policy domain: the mode ("enforce", "testing", "dane"), sessions that worked and failed, a failure. */
export interface TlsFigures {
  readonly mode: string;
  readonly success: number;
  readonly failure: number;
  readonly lastFailure?: string;
}

/** Pure: a day's count rows (every node's) summed per policy domain. */
export function tlsFigures(rows: readonly TlsSessionCount[]): Map<string, TlsFigures> {
  const out = new Map<string, TlsFigures>();
  for (const r of rows) {
    const mode = r.policyType === 'tlsa' ? 'dane' : /^mode:\s*(\S+)/.exec(r.policyStrings.find((l) => l.startsWith('mode:')) ?? '')?.[1] ?? r.policyType;
    const had = out.get(r.policyDomain) ?? { mode, success: 0, failure: 0 };
    const failed = r.resultType !== '';
    out.set(r.policyDomain, {
      mode, success: had.success + (failed ? 0 : r.sessions), failure: had.failure + (failed ? r.sessions : 0),
      ...(failed ? { lastFailure: `${r.receivingMx ? `${r.receivingMx}: ` : ''}${r.resultType}` } : had.lastFailure ? { lastFailure: had.lastFailure } : {}),
    });
  }
  return out;
}

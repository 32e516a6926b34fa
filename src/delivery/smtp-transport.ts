/**
 * delivery/smtp-transport — the entry point the scheduler calls to deliver
 * one message to a batch of recipients at one destination over SMTP (or
 * LMTP, when the destination's route says `protocol = "lmtp"`: the same
 * connection, transaction and pooling, with LHLO and per-recipient
 * end-of-data replies).
 *
 * One deliver() call:
 * 1. takes an idle connection to the destination from the pool, or resolves
 *    the next hops and tries them in order (a refused/timed-out connect, a
 *    4xx/5xx greeting, a failed required TLS or AUTH → next host);
 * 2. runs transactions of at most max_recipients_per_transaction recipients
 *    (send.ts); after each it calls `record` and AWAITS it before the
 *    connection is used again (delivered is durable first — spec);
 * 3. puts limit-deferred recipients (I3) first into the next transaction at
 *    once, on the same connection, or on a new one if the server closed it or
 *    the per-connection transaction cap was reached — no failure counted;
 * 4. stops at the first connection-level failure (421, timeout, reset, every
 *    host down): everything not yet decided is deferred with that reply and
 *    `destinationFailure` is returned, so the destination's backoff (not a new
 *    connection per message) governs the next try (I5).
 *
 * What a failure means beyond one recipient (next host, destination failure,
 * bounce, "too many connections") is delivery/failure-policy's decision; this
 * file only carries it out and reports it (`BatchResult.throttle`), together
 * with whether a session worked and the lowest recipient limit met (I6). A
 * batch's `maxRecipients` (a learned limit) caps every transaction.
 *
 * Resolution that fails permanently (null MX, NXDOMAIN) fails every recipient
 * without `destinationFailure`; a temporary one defers them with it.
 *
 * MTA-STS (delivery/mta-sts) for MX deliveries: under an `enforce` policy only
 * the MX hosts the policy names are tried, each with TLS and a certificate
 * verified for its name, never in plaintext; a failure defers with the
 * reason. Under `testing` delivery goes on as usual and what would have failed
 * is logged. Each session under a policy counts towards its TLS-RPT figures.
 *
 * DANE (delivery/dane, RFC 7672) for MX deliveries, when the startup
 * self-test let it on: a domain whose MX set is DNSSEC-secure and whose MX
 * hosts publish TLSA records is delivered only to hosts whose certificate
 * matches them (a host whose TLSA lookup fails is not tried); a bogus MX set
 * defers. Such a domain's MTA-STS policy is not used (RFC 8461 §2); DANE is
 * decided first.
 *
 * Each session under a policy (MTA-STS, DANE) is counted for the daily
 * TLS-RPT reports (delivery/tls-sessions), with the RFC 8460 result type of a
 * failure (delivery/tls-result-type).
 *
 * From a source address (`batch.source`, [egress]) the connection binds to
 * it and says its EHLO name; next hops of the other address family are not
 * tried from it. Idle connections are pooled per destination key, which then
 * names the source (`mx:…@ip2`), so a pooled connection is never reused
 * for another source.
 *
 * Idle connections are pooled per destination (up to
 * max_messages_per_connection transactions each) and closed with QUIT after
 * connection_idle_timeout; a connection that saw a timeout or error is never
 * pooled. It does not decide retry times, count attempts or write the queue:
 * `record` (the scheduler) does.
 */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Config, TlsPolicy } from '../config/schema.js';
import type { EgressSource } from '../destination/sources.js';
import { durationMs } from '../config/units.js';
import type { LastReply, RecipientRow } from '../queue/model.js';
import { hopLabel, SmtpConnection, type ClientTimeouts, type OpenOptions } from './connection.js';
import type { Dane, DanePlan, HostPolicy } from './dane.js';
import { tlsaText } from './dane-match.js';
import { daneSession, stsSession, type TlsRptRecorder } from './tls-sessions.js';
import { tlsResultType } from './tls-result-type.js';
import { stsPlan, type MtaSts, type StsPlan } from './mta-sts.js';
import type { MxResolver, NextHop, Resolution } from './resolve.js';
import { judgeReply, judgeTrouble } from './failure-policy.js';
import { runTransaction } from './send.js';
import { runProbe } from './probe.js';
import type { BatchResult, OutboundBatch, RecipientVerdict, RecordVerdicts, Transport } from './types.js';

export type { BatchResult, OutboundBatch, RecipientVerdict, RecordVerdicts } from './types.js';

/**
 * What a recipient verification probe found: the remote's reply to RCPT TO, or the trouble that kept it from
 * answering (`destinationFailure`: a connection-level failure the destination's backoff is charged with).
 * `closed` resolves once the probe's session is over (QUIT answered or the socket gone): the caller's gate
 * slot covers the session to its end, as a delivery's does.
 */
export type ProbeOutcome = (
  | { readonly kind: 'answered'; readonly reply: LastReply }
  | { readonly kind: 'trouble'; readonly reply: LastReply; readonly destinationFailure: boolean }
) & { readonly closed: Promise<void> };

export interface SmtpTransportDeps {
  /** The configuration in force, read at use time (config/live). */
  readonly config: () => Config;
  readonly resolver: MxResolver;
  readonly log: Logger;
  readonly clock?: () => number;
  /** MTA-STS policies; absent → no MTA-STS. */
  readonly mtaSts?: MtaSts;
  /** Trusted roots for certificate checks ([delivery] tls_ca_file added to the system's). */
  readonly ca?: readonly string[];
  /** DANE, once the startup self-test has spoken: undefined when it is off. Absent → no DANE. */
  readonly dane?: () => Promise<Dane | undefined>;
  /** TLS-RPT session counts (delivery/tls-sessions); absent → not counted. */
  readonly tlsRpt?: TlsRptRecorder;
  /** A destination's provider shaping (destination/providers); absent → the configuration alone. */
  readonly shaping?: TransportShaping;
}

/** What the transport reads of a destination's provider preset. */
export interface TransportShaping {
  /** Transactions per connection and the least TLS policy towards the destination (each only ever stricter). */
  of(destination: string): { readonly maxMessagesPerConnection?: number; readonly tls?: TlsPolicy };
  /** A reply a rule answers by pausing the destination (or its provider): no next MX host is tried. */
  pauses(destination: string, reply: LastReply): boolean;
}

const TLS_ORDER: readonly TlsPolicy[] = ['none', 'opportunistic', 'required', 'verify'];

/** The stricter of two TLS policies (a provider preset only ever raises the configured one). */
export const stricterTls = (a: TlsPolicy, b: TlsPolicy | undefined): TlsPolicy =>
  (b !== undefined && TLS_ORDER.indexOf(b) > TLS_ORDER.indexOf(a) ? b : a);

interface Idle {
  readonly conn: SmtpConnection;
  readonly timer: NodeJS.Timeout;
}

/** What getting a connection for a batch gave: one, or why there is none. */
type Connected =
  | { readonly kind: 'connected'; readonly conn: SmtpConnection }
  | { readonly kind: 'failed'; readonly reply: LastReply }
  | { readonly kind: 'deferred'; readonly reply: LastReply; readonly destinationFailure: boolean; readonly throttle: boolean };

export class SmtpTransport implements Transport {
  readonly stats = { connectionsOpened: 0, transactions: 0 };
  private readonly idle = new Map<string, Idle[]>();
  private readonly timeouts: ClientTimeouts;
  private readonly idleMs: number;
  private closed = false;

  constructor(private readonly deps: SmtpTransportDeps) {
    const t = deps.config().delivery.timeouts;
    this.timeouts = {
      connect: durationMs(t.connect),
      greeting: durationMs(t.greeting),
      command: durationMs(t.command),
      dataInit: durationMs(t.data_init),
      dataBlock: durationMs(t.data_block),
      dataDone: durationMs(t.data_done),
    };
    this.idleMs = durationMs(deps.config().delivery.connection_idle_timeout);
  }

  async deliver(batch: OutboundBatch, record: RecordVerdicts): Promise<BatchResult> {
    const d = this.deps.config().delivery;
    const byId = new Map(batch.recipients.map((r) => [r.id, r]));
    let queue: readonly RecipientRow[] = batch.recipients;
    let conn: SmtpConnection | undefined = this.takeIdle(batch.destination);
    let resolution: Resolution | undefined;
    // A learned limit (I6) caps every transaction; a limit met in this call caps the rest of it at once.
    let perTx = Math.max(1, Math.min(d.max_recipients_per_transaction, batch.maxRecipients ?? Infinity));
    let limitReached: BatchResult['limitReached'];
    let sessionWorked = false;
    const done = (r: BatchResult): BatchResult => ({
      ...r, ...(sessionWorked ? { sessionWorked } : {}), ...(limitReached ? { limitReached } : {}),
    });

    const settleAll = async (kind: 'failed' | 'deferred', reply: LastReply): Promise<void> => {
      const v: RecipientVerdict = kind === 'failed' ? { kind, reply } : { kind, reply, connectionLevel: true };
      if (queue.length > 0) await record(new Map(queue.map((r) => [r.id, v])));
      queue = [];
    };

    try {
      // Every round decides at least one recipient or ends the call (the reducer
      // guarantees limit-deferral only after an acceptance), so this bound holds.
      for (let round = 0; queue.length > 0 && round <= batch.recipients.length + 1; round++) {
        if (!conn || !(await conn.prepare())) {
          conn?.destroy();
          conn = undefined;
          resolution ??= await this.resolve(batch.domain);
          const got = await this.connect(resolution, batch.domain, batch.destination, batch.source);
          if (got.kind !== 'connected') {
            await settleAll(got.kind, got.reply);
            if (got.kind === 'failed' || !got.destinationFailure) return done({});
            return done({ destinationFailure: got.reply, ...(got.throttle ? { throttle: true } : {}) });
          }
          conn = got.conn;
        }

        const take = queue.slice(0, perTx);
        const report = await runTransaction(conn, {
          message: batch.message,
          body: batch.body,
          recipients: take,
          policy: { mailboxFull: d.mailbox_full },
          log: this.deps.log,
        });
        if (report.mailSent) this.stats.transactions++;
        if (report.mailSent && !report.connectionFailure) sessionWorked = true;
        if (report.limitReached) {
          perTx = Math.max(1, Math.min(perTx, report.limitReached.accepted));
          if (!limitReached || report.limitReached.accepted < limitReached.accepted) limitReached = report.limitReached;
        }
        this.logTransaction(batch, conn.label, report.verdicts, report.limitDeferred.length);
        // Durable first: nothing else happens on this connection until record resolves.
        if (report.verdicts.size > 0) await record(report.verdicts);
        queue = [...report.limitDeferred.map((id) => byId.get(id)!), ...queue.slice(take.length)];

        if (report.connectionFailure) {
          conn.destroy();
          conn = undefined;
          await settleAll('deferred', report.connectionFailure);
          const j = judgeReply(report.connectionFailure);
          return done({ destinationFailure: report.connectionFailure, ...(j.throttle ? { throttle: true } : {}) });
        }
        if (conn.transactions >= this.maxMessages(batch.destination)) {
          await conn.quit();
          conn = undefined;
        }
      }
      if (queue.length > 0) {
        // Unreachable by the argument above; never leave a recipient unrecorded.
        await settleAll('deferred', { code: 451, enhanced: '4.3.0', text: 'internal: transaction round limit reached' });
      }
    } catch (err) {
      conn?.destroy();
      conn = undefined;
      throw err;
    } finally {
      // A connection that cannot be reused is QUIT before this returns: the caller's slot covers its session to the end.
      if (conn) await this.release(batch.destination, conn);
    }
    return done({});
  }

  /**
   * A recipient verification probe (delivery/probe) for `address` on the path a delivery to `domain` takes:
   * the same resolution, next hops, TLS and AUTH, LMTP or SMTP; MAIL FROM:<>, RCPT TO, then QUIT (a probe's
   * connection is never pooled: it would hold no slot). The caller holds the destination's gate slot.
   */
  async probe(domain: string, address: string): Promise<ProbeOutcome> {
    const resolution = await this.resolve(domain);
    const got = await this.connect(resolution, domain);
    if (got.kind !== 'connected') {
      return { kind: 'trouble', reply: got.reply, destinationFailure: got.kind === 'deferred' && got.destinationFailure, closed: Promise.resolve() };
    }
    const conn = got.conn;
    let report;
    try {
      report = await runProbe(conn, address);
    } catch (err) {
      conn.destroy();
      throw err;
    }
    if (report.kind === 'trouble' && report.connectionLevel) {
      conn.destroy();
      return { kind: 'trouble', reply: report.reply, destinationFailure: true, closed: Promise.resolve() };
    }
    const closed = conn.quit().catch(() => undefined);
    return report.kind === 'answered' ? { ...report, closed } : { kind: 'trouble', reply: report.reply, destinationFailure: false, closed };
  }

  /** QUITs up to `count` (default all) of the connections to `destination` kept idle, and waits until they are closed. */
  async closeIdle(destination: string, count = Infinity): Promise<void> {
    const pooled = this.idle.get(destination) ?? [];
    const list = pooled.splice(0, Math.min(count, pooled.length));
    if (pooled.length === 0) this.idle.delete(destination);
    await Promise.all([...list.map(async (i) => {
      clearTimeout(i.timer);
      // The slot is given back after this: the remote must see the session over by then.
      await i.conn.quit(true);
    })]);
  }

  /** QUITs every idle connection. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(all.map(async (i) => {
      clearTimeout(i.timer);
      await i.conn.quit();
    }));
  }

  private resolve(domain: string): Promise<Resolution> {
    const config = this.deps.config();
    return this.deps.resolver.resolveDestination(domain, { port: config.delivery.port, maxHosts: config.delivery.max_mx_hosts, routes: config.routes });
  }

  /** Tries each next hop in order; the failure policy says whether to go on and what the last failure means. */
  /** Transactions one connection to the destination carries (its provider preset only ever lowers the setting). */
  private maxMessages(destination: string): number {
    return Math.min(this.deps.config().delivery.max_messages_per_connection, this.deps.shaping?.of(destination).maxMessagesPerConnection ?? Infinity);
  }

  private async connect(resolution: Resolution, domain: string, destination?: string, source?: EgressSource): Promise<Connected> {
    if (resolution.kind === 'failed' || resolution.kind === 'deferred') {
      const reply: LastReply = { code: resolution.code, enhanced: resolution.enhanced, text: resolution.text, command: 'resolve' };
      const j = judgeTrouble('resolve', reply);
      return j.recipients === 'bounce' ? { kind: 'failed', reply } : { kind: 'deferred', reply, destinationFailure: j.destinationFailure, throttle: j.throttle };
    }
    const cfg = this.deps.config();
    const route = resolution.routeConfig;
    const dane = await this.daneFor(resolution, domain);
    if (dane.kind === 'failed') {
      this.deps.log.warn({ domain, event: 'dane', reason: dane.text }, `DANE: ${domain} deferred: ${dane.text}`);
      return { kind: 'deferred', reply: { code: 451, enhanced: '4.7.5', text: dane.text, command: 'resolve' }, destinationFailure: true, throttle: false };
    }
    // RFC 8461 §2: a domain under DANE is not subject to its MTA-STS policy.
    const sts: StsPlan = dane.kind === 'dane' ? { kind: 'none' } : await this.stsFor(resolution, domain);
    if (sts.kind === 'no-match') {
      this.deps.tlsRpt?.session(stsSession(domain, sts.policy, { resultType: 'validation-failure' }));
      // Every recipient of the domain meets the same policy: the destination backs off, one try per step.
      return { kind: 'deferred', reply: { code: 451, enhanced: '4.7.5', text: sts.text, command: 'connect' }, destinationFailure: true, throttle: false };
    }
    const opts: OpenOptions = {
      heloName: source?.ehloName ?? cfg.delivery.helo_name ?? cfg.hostname,
      ...(source ? { localAddress: source.address } : {}),
      tls: sts.kind === 'enforce' ? 'verify' : stricterTls(route?.tls ?? cfg.delivery.tls, destination !== undefined ? this.deps.shaping?.of(destination).tls : undefined),
      ...(route?.protocol === 'lmtp' ? { lmtp: true } : {}),
      timeouts: this.timeouts,
      log: this.deps.log,
      ...(this.deps.ca ? { ca: this.deps.ca } : {}),
      ...(route?.auth ? { auth: route.auth } : {}),
    };
    if (sts.kind === 'testing' && sts.mismatched.length > 0) {
      this.deps.log.warn({ domain, event: 'mta_sts_testing', mx: sts.mismatched, policy_mx: sts.policy.mx }, `MTA-STS testing: MX host(s) ${sts.mismatched.join(', ')} not in the policy of ${domain}; delivering anyway`);
    }
    let last: LastReply = { code: 451, enhanced: '4.4.4', text: `No next hop for ${domain}`, command: 'connect' };
    let verdict = judgeReply(last);
    for (const hop of sts.kind === 'enforce' ? sts.hops : resolution.hops) {
      // A source binds one address family: a next hop of the other is not reachable from it.
      if (source && hop.socket === undefined && isIP(source.address) !== hop.family) {
        last = { code: 451, enhanced: '4.4.4', text: `source ${source.name} (${source.address}) cannot reach ${hop.address}: another address family`, command: 'connect', host: hopLabel(hop), ours: true };
        verdict = judgeReply(last);
        continue;
      }
      const policy: HostPolicy | undefined = dane.kind === 'dane' ? dane.hosts.get(hop.host) : undefined;
      if (policy?.kind === 'unusable') {
        last = { code: 451, enhanced: '4.7.5', text: policy.text, command: 'connect', host: hopLabel(hop) };
        this.deps.tlsRpt?.session(daneSession(hop.host, [], { resultType: tlsResultType(policy.text) ?? 'dnssec-invalid', ip: hop.address }));
        verdict = judgeReply(last);
        this.deps.log.warn({ domain, host: hopLabel(hop), event: 'dane', reason: policy.text }, `DANE: not using ${hop.host}: ${policy.text}`);
        continue;
      }
      const hopOpts: OpenOptions = policy?.kind === 'dane'
        ? { ...opts, tls: 'required', dane: { records: policy.records, names: [hop.host, domain] } }
        : policy?.kind === 'tls-required' ? { ...opts, tls: opts.tls === 'verify' ? 'verify' : 'required' } : opts;
      const got = await this.openHop(hop, hopOpts);
      if (got.kind === 'connected') {
        this.countSts(sts, domain, hop.host, got.conn);
        if (policy?.kind === 'dane') this.deps.tlsRpt?.session(daneSession(hop.host, policy.records.map(tlsaText)));
        if (got.conn.dane) this.deps.log.info({ domain, host: hopLabel(hop), event: 'dane', tlsa: got.conn.dane }, `DANE: ${hop.host} authenticated (${got.conn.dane})`);
        return got;
      }
      last = got.reply;
      verdict = judgeReply(last);
      const resultType = tlsResultType(last.text);
      if (policy?.kind === 'dane' && resultType) this.deps.tlsRpt?.session(daneSession(hop.host, policy.records.map(tlsaText), { resultType, ip: hop.address }));
      if (sts.kind === 'enforce') {
        if (resultType) this.deps.tlsRpt?.session(stsSession(domain, sts.policy, { resultType, host: hop.host, ip: hop.address }));
        last = { ...last, text: `MTA-STS policy of ${domain} (enforce): ${last.text}` };
      }
      this.deps.log.info({ domain, host: hopLabel(hop), code: last.code, reply: last.text, command: last.command, rule: verdict.rule }, 'next hop failed; trying the next');
      if (!verdict.nextHost) break;
      // A provider that asked us to go away (a pausing rule: Yahoo's TSS04 at greeting) is no nearer on its next MX host.
      if (destination !== undefined && this.deps.shaping?.pauses(destination, last)) break;
    }
    return { kind: 'deferred', reply: last, destinationFailure: verdict.destinationFailure, throttle: verdict.throttle };
  }

  /** The DANE plan for an MX delivery (routes and address literals have none; nor has anything while DANE is off). */
  private async daneFor(resolution: Resolution & { kind: 'hops' }, domain: string): Promise<DanePlan> {
    if (!this.deps.dane || resolution.route !== undefined || domain.startsWith('[')) return { kind: 'insecure' };
    const dane = await this.deps.dane();
    return dane ? dane.planFor(domain, resolution.hops) : { kind: 'insecure' };
  }

  /** The MTA-STS plan for an MX delivery (routes and address literals have none). */
  private async stsFor(resolution: Resolution & { kind: 'hops' }, domain: string): Promise<StsPlan> {
    const sts = this.deps.mtaSts;
    if (!sts || resolution.route !== undefined || domain.startsWith('[')) return { kind: 'none' };
    return stsPlan(await sts.policyFor(domain), resolution.hops, domain);
  }

  /** TLS-RPT: a session under a policy succeeded, or (testing) would have failed — counted and logged. */
  private countSts(sts: StsPlan, domain: string, host: string, conn: SmtpConnection): void {
    if (sts.kind === 'enforce') this.deps.tlsRpt?.session(stsSession(domain, sts.policy));
    if (sts.kind !== 'testing') return;
    const matched = !sts.mismatched.includes(host);
    const ok = matched && conn.tls !== undefined && conn.tlsVerified;
    // The RFC 8460 result type of what would fail, and the log's words for it.
    const [resultType, why] = !matched ? ['validation-failure', 'validation-failure: MX host not in the policy']
      : conn.tls === undefined ? ['starttls-not-supported', 'starttls-not-supported'] : ['certificate-host-mismatch', 'certificate not valid for the MX host'];
    this.deps.tlsRpt?.session(stsSession(domain, sts.policy, ok ? undefined : { resultType, host, ip: conn.hop.address }));
    if (!ok) this.deps.log.warn({ domain, host, event: 'mta_sts_testing', reason: why }, `MTA-STS testing: ${host} would fail the policy of ${domain} (${why}); delivered anyway`);
  }

  private async openHop(hop: NextHop, opts: OpenOptions): Promise<{ kind: 'connected'; conn: SmtpConnection } | { kind: 'refused'; reply: LastReply }> {
    this.stats.connectionsOpened++;
    const first = await SmtpConnection.open(hop, opts);
    if (first.ok) return { kind: 'connected', conn: first.conn };
    // Opportunistic TLS whose handshake broke the connection: this host once more in plaintext.
    if (!first.tlsHandshakeFailed) return { kind: 'refused', reply: first.failure };
    this.deps.log.warn({ host: first.failure.host, reply: first.failure.text }, 'TLS handshake failed; retrying in plaintext (opportunistic)');
    this.stats.connectionsOpened++;
    const plain = await SmtpConnection.open(hop, { ...opts, tls: 'none' });
    return plain.ok ? { kind: 'connected', conn: plain.conn } : { kind: 'refused', reply: plain.failure };
  }

  private takeIdle(destination: string): SmtpConnection | undefined {
    const list = this.idle.get(destination);
    // Bounded by the pool's length; dead ones are dropped on the way.
    while (list && list.length > 0) {
      const i = list.pop()!;
      clearTimeout(i.timer);
      if (list.length === 0) this.idle.delete(destination);
      if (i.conn.usable) {
        i.conn.socket.ref();
        return i.conn;
      }
      i.conn.destroy();
    }
    return undefined;
  }

  private async release(destination: string, conn: SmtpConnection): Promise<void> {
    const max = this.maxMessages(destination);
    if (this.closed || !conn.usable || conn.transactions >= max) {
      await conn.quit().catch(() => undefined);
      return;
    }
    const timer = setTimeout(() => {
      const list = this.idle.get(destination);
      const at = list?.findIndex((i) => i.conn === conn) ?? -1;
      if (list && at >= 0) list.splice(at, 1);
      if (list?.length === 0) this.idle.delete(destination);
      void conn.quit();
    }, this.idleMs);
    timer.unref();
    // An idle connection must not keep the process alive.
    conn.socket.unref();
    const list = this.idle.get(destination) ?? [];
    list.push({ conn, timer });
    this.idle.set(destination, list);
  }

  private logTransaction(batch: OutboundBatch, host: string, verdicts: ReadonlyMap<number, RecipientVerdict>, limitDeferred: number): void {
    const count = (k: RecipientVerdict['kind']): number => [...verdicts.values()].filter((v) => v.kind === k).length;
    this.deps.log.debug(
      { messageId: batch.message.id, destination: batch.destination, ...(batch.source ? { source: batch.source.name } : {}), host, delivered: count('delivered'), failed: count('failed'), deferred: count('deferred'), limitDeferred },
      'transaction finished',
    );
  }
}

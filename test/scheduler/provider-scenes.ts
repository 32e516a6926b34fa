/**
 * test/scheduler/provider-scenes — the two provider storms of issue 25,
 * played over real sockets against test/support/remote-smtp, with real DNS
 * on loopback (test/support/dns-server) naming the providers' MX hosts, and
 * Halcyon on the scheduler harness's fake clock (the remote reads the same
 * clock, so "10 messages per rolling 10 s" is simulated time too: a minute
 * of the scene takes a few seconds). Used by test/scheduler/provider-shaping
 * (assertions) and bench/shaping (figures with and without the presets).
 *
 * - `gmailScene`: ten domains on one Google MX; the remote accepts 10
 *   messages per rolling 10 s and answers `421 4.7.28 … unusual rate …` at
 *   end of data beyond that.
 * - `yahooScene`: three domains on Yahoo's three MX hosts; the remote greets
 *   `421 4.7.0 [TSS04] …` until it "recovers", then takes everything.
 *
 * It asserts nothing; it reports figures.
 */
import { generate } from 'selfsigned';
import { formatDestinations } from '../../src/cli/format.js';
import { startDnsServer, type Zone } from '../support/dns-server.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { enqueueMany, simulate, startHarness, type SchedulerHarness } from './harness.js';

const MINUTE = 60_000;

export interface GmailFigures {
  readonly presets: boolean;
  /** Within the first 60 s (simulated). */
  readonly delivered60: number;
  readonly replies421In60: number;
  readonly connections60: number;
  /** What the remote would have taken in those 60 s (10 per rolling 10 s). */
  readonly allowed60: number;
  /** After the whole run. */
  readonly delivered: number;
  readonly failed: number;
  readonly duplicates: number;
  readonly replies421: number;
  /** Simulated time until all were delivered (or the horizon). */
  readonly drainedMs: number;
  /** `halcyon destinations` at the end of the first 60 s. */
  readonly listing: string;
}

export interface YahooFigures {
  readonly presets: boolean;
  readonly connections60: number;
  /** Simulated time from the remote's recovery to the last delivery. */
  readonly resumedAfterMs: number | undefined;
  readonly delivered: number;
  readonly total: number;
  readonly failed: number;
}

async function tlsPems(): Promise<{ key: string; cert: string }> {
  const p = await generate([{ name: 'commonName', value: 'mx.remote.test' }], { keyType: 'ec', curve: 'P-256' });
  return { key: p.private, cert: p.cert };
}

const zone = (domains: readonly string[], hosts: readonly string[]): Zone => {
  const z: Zone = {};
  for (const h of hosts) z[h] = { A: ['127.0.0.1'], TTL: 3600 };
  for (const d of domains) z[d] = { MX: hosts.map((exchange, i) => ({ preference: 10 + i, exchange })), TTL: 3600 };
  return z;
};

/** Recipients not final yet, and those that failed (delivered ones leave the queue with their message). */
async function stateCounts(h: SchedulerHarness): Promise<{ failed: number; waiting: number }> {
  const rcpts = (await h.app.store.recipients.listMessages({})).flatMap((m) => m.recipients);
  return {
    failed: rcpts.filter((r) => r.state === 'failed' || r.state === 'expired').length,
    waiting: rcpts.filter((r) => r.state !== 'delivered' && r.state !== 'failed' && r.state !== 'expired').length,
  };
}

/** Recipients the remote took (250 at end of data), and how many of them it took more than once. */
function taken(remote: Remote): { delivered: number; duplicates: number } {
  const seen = remote.transactions.filter((t) => t.reply?.startsWith('250')).flatMap((t) => t.rcpts);
  return { delivered: new Set(seen).size, duplicates: seen.length - new Set(seen).size };
}

/** Gmail-style: 200 messages over ten domains hosted on one Google MX that takes 10 per rolling 10 s. */
export async function gmailScene(opts: { presets: boolean; messages?: number; horizonMs?: number; twoMxSets?: boolean }): Promise<GmailFigures> {
  const messages = opts.messages ?? 200;
  const domains = Array.from({ length: 10 }, (_, i) => `g${i + 1}.test`);
  const MX = 'gmail-smtp-in.l.google.com';
  // `twoMxSets`: half the domains on Workspace's MX instead — two destinations, one provider, one sending IP.
  const z = zone(domains, [MX]);
  if (opts.twoMxSets) Object.assign(z, zone(domains.filter((_, i) => i % 2 === 1), ['aspmx.l.google.com']));
  const dns = await startDnsServer(z);
  let now = (): number => 0;
  const accepted: number[] = [];
  const refused: number[] = [];
  const remote = await startRemote({
    extensions: { pipelining: true, enhancedStatusCodes: true, starttls: await tlsPems() },
    endOfDataReply: () => {
      const t = now();
      if (accepted.filter((a) => a > t - 10_000).length >= 10) {
        refused.push(t);
        return '421 4.7.28 [127.0.0.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. - gsmtp';
      }
      accepted.push(t);
      return '250 2.0.0 OK - gsmtp';
    },
  });
  const h = await startHarness(remote.port, { port: remote.port, connection_idle_timeout: '1m' }, {
    routes: {}, dns: { servers: [dns.address], timeout: '2s' }, shaping: { enabled: opts.presets },
  });
  now = h.clock.now;
  try {
    const start = h.clock.now();
    for (let i = 0; i < domains.length; i++) {
      await enqueueMany(h.app.store, { count: messages / domains.length, destination: domains[i]!, domain: domains[i]!, receivedAt: start });
    }
    await simulate(h, start + MINUTE, () => remote.connections.length, 5_000);
    const in60 = { delivered: accepted.length, refused: refused.length, connections: remote.connections.length };
    const listing = formatDestinations(await h.app.admin.destinations(), h.clock.now());
    // The rest: until everything is delivered (or the horizon), in slices so a drained queue stops early.
    const horizon = start + (opts.horizonMs ?? 60 * MINUTE);
    while (h.clock.now() < horizon && (await stateCounts(h)).waiting > 0) {
      await simulate(h, Math.min(horizon, h.clock.now() + MINUTE), () => remote.connections.length, 5_000);
    }
    const end = await stateCounts(h);
    const got = taken(remote);
    return {
      presets: opts.presets, delivered60: in60.delivered, replies421In60: in60.refused, connections60: in60.connections, allowed60: 60,
      delivered: got.delivered, failed: end.failed, duplicates: got.duplicates, replies421: refused.length,
      drainedMs: (accepted.at(-1) ?? start) - start, listing,
    };
  } finally {
    await h.stop();
    await remote.close();
    await dns.close();
  }
}

/** Yahoo TSS04 at greeting: the remote turns every session away at the greeting until `recoverAtMs`, then takes all. */
export async function yahooScene(opts: { presets: boolean; messages?: number; recoverAtMs?: number; horizonMs?: number }): Promise<YahooFigures> {
  const messages = opts.messages ?? 30;
  const domains = ['y1.test', 'y2.test', 'y3.test'];
  const hosts = ['mta5.am0.yahoodns.net', 'mta6.am0.yahoodns.net', 'mta7.am0.yahoodns.net'];
  const dns = await startDnsServer(zone(domains, hosts));
  const TSS04 = '421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes';
  let now = (): number => 0;
  let lastDelivery = 0;
  const remote = await startRemote({
    banner: TSS04, extensions: { pipelining: true, enhancedStatusCodes: true, starttls: await tlsPems() },
    endOfDataReply: () => { lastDelivery = now(); return '250 ok dirdel'; },
  });
  const h = await startHarness(remote.port, { port: remote.port, connection_idle_timeout: '1m' }, {
    routes: {}, dns: { servers: [dns.address], timeout: '2s' }, shaping: { enabled: opts.presets },
  });
  now = h.clock.now;
  try {
    const start = h.clock.now();
    for (const d of domains) await enqueueMany(h.app.store, { count: messages / domains.length, destination: d, domain: d, receivedAt: start });
    await simulate(h, start + MINUTE, () => remote.connections.length, 2_000);
    const connections60 = remote.connections.length;
    // The remote recovers; Halcyon goes on as its schedule (a rule's pause, a backoff) allows.
    const recoverAt = start + (opts.recoverAtMs ?? MINUTE);
    if (h.clock.now() < recoverAt) await simulate(h, recoverAt, () => remote.connections.length, 2_000);
    remote.setOptions({ banner: undefined });
    const recovered = h.clock.now();
    const horizon = start + (opts.horizonMs ?? 6 * 60 * MINUTE);
    while (h.clock.now() < horizon && (await stateCounts(h)).waiting > 0) {
      await simulate(h, Math.min(horizon, h.clock.now() + 5 * MINUTE), () => remote.connections.length, 2_000);
    }
    const end = await stateCounts(h);
    return {
      presets: opts.presets, connections60, resumedAfterMs: end.waiting === 0 ? lastDelivery - recovered : undefined,
      delivered: taken(remote).delivered, total: messages, failed: end.failed,
    };
  } finally {
    await h.stop();
    await remote.close();
    await dns.close();
  }
}

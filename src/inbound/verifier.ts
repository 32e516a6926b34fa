/**
 * inbound/verifier — recipient verification at RCPT time (Postfix's verify(8)
 * and reject_unverified_recipient): for an address on a route with
 * verify = "probe", answers from the shared cache (queue/verify-cache) or
 * probes the address on the route delivery would take (delivery/probe via
 * the SMTP transport), waits a bounded time for the answer, and says what
 * the client hears (inbound/verify-policy decides all of it).
 *
 * What keeps verification from becoming a storm of its own:
 * - concurrent RCPTs for one address (in any session of this node) share one
 *   probe; a stale cached answer is used while one probe refreshes it;
 * - every probe goes through destination/service like a delivery: a token of
 *   the destination's rate (when one is set), then a slot within its
 *   connection cap; a destination in backoff, suspended (by an administrator
 *   or a reply rule) or full gets no probe (the RCPT hears 450 at once), and
 *   after a backoff the one probe the gate grants may be a verification
 *   probe; the probe's result moves the destination's health exactly as a
 *   delivery's would (`afterBatch`: the one backoff step, or the recovery);
 * - only definite answers are cached; a failure is charged to the
 *   destination's backoff, never retried per RCPT.
 *
 * A probe outlives the RCPT that started it: its answer is cached for the
 * client's retry. Does not decide what a reply means, nor hold SQL.
 */
import type { Logger } from 'pino';
import type { RouteConfig } from '../config/schema.js';
import { routeFor, routeKey, type Route } from '../delivery/route.js';
import type { ProbeOutcome } from '../delivery/smtp-transport.js';
import type { BatchResult } from '../delivery/types.js';
import { formatReply } from '../destination/reply-rules.js';
import type { DestinationWork, Destinations, Wait } from '../destination/service.js';
import type { LastReply } from '../queue/model.js';
import type { VerifyCache } from '../queue/verify-cache.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import { cacheEntry, cachePlan, probeVerdict, rcptAnswer, troubleFinding, verifyKey, type Finding, type RcptAnswer, type VerifySettings } from './verify-policy.js';

/** The route of `domain` when RCPT to it is verified at all (`verify = "probe"`), else undefined: asked before anything else. */
export function probedRoute(domain: string, routes: Readonly<Record<string, RouteConfig>>): Route | undefined {
  const route = routeFor(domain, routes);
  return route?.verify === 'probe' ? route : undefined;
}

export interface VerifierDeps {
  readonly cache: VerifyCache;
  /** The destination's gate, cap, rate and health (destination/service): a probe asks and reports as a delivery does. */
  readonly destinations: Pick<Destinations, 'takeToken' | 'acquire' | 'release' | 'afterBatch'>;
  /** One probe on the path a delivery to `domain` takes (SmtpTransport.probe). */
  readonly probe: (domain: string, address: string) => Promise<ProbeOutcome>;
  /** Read at use time (a reload applies). */
  readonly routes: () => Readonly<Record<string, RouteConfig>>;
  readonly settings: () => VerifySettings;
  readonly clock: () => number;
  readonly log: Logger;
  /** The project's bounce classifier (smtp/bounce-rules): the class of a probe's reply. */
  readonly classify: (reply: LastReply) => BounceClass;
  /** Each probe that ran, by what it found (metrics). */
  readonly onProbe?: (verdict: 'exists' | 'absent' | 'unknown') => void;
}

/** How often (clock time) expired cache rows are removed, as Postfix's address_verify_cache_cleanup_interval. */
const CLEANUP_EVERY_MS = 12 * 3_600_000;
const CLEANUP_SLICE = 1000;

export class Verifier {
  /** Probes in flight on this node, by cache key: every RCPT for the address meanwhile waits for the same one. */
  private readonly inflight = new Map<string, Promise<Finding>>();
  private lastCleanup: number;
  readonly stats = { probes: 0, cacheHits: 0, shared: 0, gateWaits: 0 };

  constructor(private readonly deps: VerifierDeps) {
    this.lastCleanup = deps.clock();
  }

  /** The client's answer to RCPT TO:<address> (accept when the domain's route does not verify). */
  async check(address: string, domain: string): Promise<RcptAnswer> {
    const route = probedRoute(domain, this.deps.routes());
    if (!route) return { kind: 'accept' };
    const s = this.deps.settings();
    const key = verifyKey(address);
    const now = this.deps.clock();
    this.cleanup(now);
    let cached;
    try {
      cached = await this.deps.cache.getVerification(key, now);
    } catch (err) {
      return rcptAnswer(address, { kind: 'undecided', why: `verification cache unavailable (${(err as Error).message})` }, s);
    }
    const plan = cachePlan(cached, now);
    const running = plan.probe ? this.probeOnce(key, address, domain, routeKey(route)) : undefined;
    if (plan.answer) {
      this.stats.cacheHits++;
      return rcptAnswer(address, { kind: 'verdict', verdict: plan.answer.verdict, reply: plan.answer.reply }, s);
    }
    const found = await waitFor(running!, s.waitMs);
    return rcptAnswer(address, found ?? { kind: 'undecided', why: 'address verification in progress' }, s);
  }

  /** The probe for `key`: the one in flight, or a new one. Never rejects. */
  private probeOnce(key: string, address: string, domain: string, destination: string): Promise<Finding> {
    const running = this.inflight.get(key);
    if (running) {
      this.stats.shared++;
      return running;
    }
    const p = this.probe(key, address, domain, destination)
      .catch((err: unknown): Finding => {
        this.deps.log.error({ event: 'verify_error', to: address, destination, err: (err as Error).message }, 'verification probe failed');
        return { kind: 'undecided', why: 'address verification failed (internal error)' };
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async probe(key: string, address: string, domain: string, destination: string): Promise<Finding> {
    const { destinations, clock, log } = this.deps;
    const now = clock();
    const token = await destinations.takeToken(destination, now);
    if (!token.ok) {
      this.stats.gateWaits++;
      return { kind: 'undecided', why: `the destination's message rate is spent until ${new Date(token.until).toISOString()}` };
    }
    // One connection, counted as this node's only one to the destination (the probe is not one of the scheduler's workers).
    const work: DestinationWork = { destination, routeKeys: new Set([destination]), workers: 0, successes: 0 };
    const { slots: [slot], wait } = await destinations.acquire(work, 1, now);
    if (!slot) {
      this.stats.gateWaits++;
      return { kind: 'undecided', why: wait ? waitWhy(wait) : 'all connections to the destination in use' };
    }
    let outcome: ProbeOutcome | undefined;
    try {
      this.stats.probes++;
      outcome = await this.deps.probe(domain, address);
      // The destination's health after the probe, as after a delivery (backoff or recovery). The answer stands
      // even when the queue cannot take it now.
      const result: BatchResult = outcome.kind === 'trouble' && outcome.destinationFailure ? { destinationFailure: outcome.reply } : {};
      await destinations.afterBatch(work, slot, result, { successes: 0 }).catch((err: unknown) => {
        log.warn({ event: 'verify_error', destination, err: (err as Error).message }, 'could not record the destination\'s health after a verification probe');
      });
    } finally {
      // The slot covers the probe's session to its end (QUIT), then goes back.
      void (outcome?.closed ?? Promise.resolve()).then(() => destinations.release(slot)).catch(() => undefined);
    }
    const reply = outcome.reply;
    const verdict = outcome.kind === 'answered' ? probeVerdict(reply, this.deps.classify(reply)) : 'unknown';
    this.deps.onProbe?.(verdict);
    if (outcome.kind === 'trouble') {
      log.info({ event: 'verify_probe', to: address, destination, verdict: 'unknown', reply: formatReply(reply) }, `verify <${address}>: no answer: ${formatReply(reply)}`);
      return troubleFinding(reply, outcome.destinationFailure);
    }
    log.info({ event: 'verify_probe', to: address, destination, verdict, reply: formatReply(reply) }, `verify <${address}>: ${verdict}: ${formatReply(reply)}`);
    if (verdict !== 'unknown') {
      // Not cached (the queue unreachable): this RCPT still hears the answer; the next one probes again.
      await this.deps.cache.putVerification(cacheEntry(key, verdict, reply, clock(), this.deps.settings())).catch((err: unknown) => {
        log.warn({ event: 'verify_error', to: address, err: (err as Error).message }, 'could not cache a verification answer');
      });
    }
    return { kind: 'verdict', verdict, reply };
  }

  /** Expired rows go, at most every CLEANUP_EVERY_MS, in the background. */
  private cleanup(now: number): void {
    if (now - this.lastCleanup < CLEANUP_EVERY_MS) return;
    this.lastCleanup = now;
    void this.deps.cache.removeExpiredVerifications(now, CLEANUP_SLICE).catch(() => undefined);
  }
}

/** The finding, or undefined when it did not come within `ms`. */
async function waitFor(p: Promise<Finding>, ms: number): Promise<Finding | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function waitWhy(g: Wait): string {
  switch (g.reason) {
    case 'backoff': return `destination in backoff until ${new Date(g.until).toISOString()}`;
    case 'suspended': return 'destination suspended';
    case 'probing': return 'destination being probed after a backoff';
    case 'full': return 'all connections to the destination in use';
  }
}


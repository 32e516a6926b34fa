/**
 * destination/tenants — the tenant's own limits, beside the destination's:
 * `[tenants.NAME] rate` (one token bucket per tenant on the queue, shared by
 * every node: the gate's takeToken, key `tenant:<name>`), `weight` (handed
 * to the fair claim), and suspensions — a `suspend_tenant` reply rule's or an
 * administrator's — kept as hold rows on the gate (queue/tenant-holds)
 * and read by every node at most once a second.
 *
 * Why a tenant's mail waits, and where it is decided:
 * 1. **held** — a suspension in force over the delivery's route key, its
 *    destination, its provider scope or everywhere (`mayGo`); its waiting
 *    batches here are given back, and every node's claims leave the
 *    (route key, tenant) pairs out while it holds (`claimFilter`), so a
 *    resume lets them go at once.
 * 2. **rate** — the tenant's bucket is empty (`mayGo`): its batches here are
 *    given back until the next token, and this node's claims leave the
 *    tenant out till then.
 * Other tenants' mail to the same destination goes on in both cases. Mail
 * without a tenant is never held nor limited here.
 *
 * What every node must agree on (holds, tokens) is on the queue; this node
 * keeps only a copy of the holds (refreshed at most every HOLD_REFRESH_MS, at
 * once after its own trigger) and when its last token take failed. Does not
 * claim, park or record (scheduler/qmgr does, with what `mayGo` answers).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { parseRate } from '../config/units.js';
import type { DestinationGate } from '../queue/destination-gate.js';
import type { DestinationRule, LastReply } from '../queue/model.js';
import { claimExclusions, EVERYWHERE, holdKey, holdOf, holdOver, HOLD_PREFIX, type TenantHold } from '../queue/tenant-holds.js';
import { formatReply, type ReplyRule } from './reply-rules.js';

/** How stale this node's copy of the holds may be: a suspension another node wrote applies here within this. */
export const HOLD_REFRESH_MS = 1_000;
/** At most one "over its rate" log line per tenant per this long. */
const RATE_LOG_MS = 60_000;

export interface TenantsDeps {
  readonly gate: Pick<DestinationGate, 'takeToken' | 'listRows' | 'putLimits'>;
  readonly config: () => Config;
  readonly log: Logger;
  readonly clock: () => number;
  /** The route keys this node knows, each with its destination (destination/map). */
  readonly known: () => Iterable<readonly [string, string]>;
  /** The key of a destination's provider scope (`provider:<name>`, or the destination itself). */
  readonly scopeOf: (destination: string) => string;
}

/** Why a tenant's batch may not go now, and until when. */
export type TenantWait = { readonly reason: 'held'; readonly until: number; readonly hold: TenantHold } | { readonly reason: 'rate'; readonly until: number };

/** What http/admin and the CLI see of a tenant on this node. */
export interface TenantState {
  readonly tenant: string;
  readonly rate?: string;
  readonly weight: number;
  /** This node found its bucket empty: its mail waits until then. */
  readonly rateLimitedUntil?: number;
}

export class Tenants {
  private holds: TenantHold[] = [];
  private readAt = -Infinity;
  /** A read of the holds on its way (workers asking at once share it). */
  private reading: Promise<void> | undefined;
  /** Rule triggers not yet written to the gate: key → rule in force. */
  private readonly pending = new Map<string, DestinationRule>();
  /** Tenant → until when this node found its bucket empty. */
  private readonly rateWaits = new Map<string, number>();
  private readonly rateLogged = new Map<string, number>();
  /** Moves on at each claim: which tenant goes first in a destination's turns (queue/fair-claim). */
  private rotation = 0;

  constructor(private readonly d: TenantsDeps) {}

  /** Reads the holds from the gate when this node's copy is older than HOLD_REFRESH_MS (or `force`). */
  async refresh(now: number, force = false): Promise<void> {
    if (!force && now - this.readAt < HOLD_REFRESH_MS && now >= this.readAt) return;
    if (this.reading && !force) return this.reading;
    this.readAt = now;
    const read = this.d.gate.listRows(HOLD_PREFIX).then((rows) => {
      // This node's triggers not yet written (share) hold here meanwhile.
      const unshared = this.holds.filter((h) => !h.manual && this.pending.has(holdKey(h.tenant, h.scope)));
      this.holds = [...rows.map((r) => holdOf(r, now)).filter((h): h is TenantHold => h !== undefined), ...unshared];
    }).finally(() => {
      if (this.reading === read) this.reading = undefined;
    });
    this.reading = read;
    return read;
  }

  /** The suspensions in force as this node last read them (and its own triggers since). */
  inForce(now: number): TenantHold[] {
    return this.holds.filter((h) => h.until > now);
  }

  /** The scopes a delivery to `destination` under `routeKey` is in (besides everywhere). */
  private scopesOf(routeKey: string, destination: string | undefined): string[] {
    return destination === undefined ? [routeKey] : [routeKey, destination, this.d.scopeOf(destination)];
  }

  /** What the next claim must leave out, the tenants' weights and the turn's rotation (RecipientQueue.claimDue). */
  claimFilter(now: number): { excludeTenants: string[]; excludePairs: { destination: string; tenant: string }[]; weights: Record<string, number>; rotation: number } {
    const holds = this.inForce(now);
    // The route keys this node knows are walked only while a hold is scoped (most passes have none).
    const known = holds.some((h) => h.scope !== EVERYWHERE) ? new Map(this.d.known()) : new Map<string, string>();
    const routeKeys = new Set([...known.keys(), ...holds.map((h) => h.scope)]);
    const { tenants, pairs } = claimExclusions(holds, routeKeys, (k) => this.scopesOf(k, known.get(k)).slice(1), now);
    for (const [tenant, until] of this.rateWaits) {
      if (until > now) tenants.push(tenant);
      else this.rateWaits.delete(tenant);
    }
    this.rotation = (this.rotation + 1) % Number.MAX_SAFE_INTEGER;
    return { excludeTenants: [...new Set(tenants)], excludePairs: pairs, weights: this.weights(), rotation: this.rotation };
  }

  /** `[tenants.NAME] weight` of the tenants whose weight is not 1. */
  private weights(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.d.config().tenants).filter(([, t]) => t.weight !== 1).map(([name, t]) => [name, t.weight]));
  }

  /**
   * Whether a batch of `tenant` may go to `destination` (under `routeKey`) now: a hold in force, then the
   * tenant's rate (a token is taken only when nothing holds it). Undefined: it may go.
   */
  async mayGo(tenant: string | undefined, routeKey: string, destination: string, now: number): Promise<TenantWait | undefined> {
    if (!tenant) return undefined;
    await this.refresh(now);
    const hold = holdOver(this.holds, tenant, this.scopesOf(routeKey, destination), now);
    if (hold) return { reason: 'held', until: hold.until, hold };
    const rate = this.rateOf(tenant);
    if (!rate) return undefined;
    const t = await this.d.gate.takeToken(`${HOLD_PREFIX}${tenant}`, now, rate);
    if (t.ok) return undefined;
    this.rateWaits.set(tenant, t.until);
    if ((this.rateLogged.get(tenant) ?? -Infinity) <= now - RATE_LOG_MS) {
      this.rateLogged.set(tenant, now);
      this.d.log.info({ event: 'tenant_rate_limited', tenant, rate: this.d.config().tenants[tenant]?.rate, until: new Date(t.until).toISOString() },
        `tenant=${tenant} over its rate (${this.d.config().tenants[tenant]?.rate ?? ''}): its mail waits (logged once a minute)`);
    }
    return { reason: 'rate', until: t.until };
  }

  private rateOf(tenant: string): { readonly count: number; readonly perMs: number } | undefined {
    const text = this.d.config().tenants[tenant]?.rate;
    return text === undefined ? undefined : parseRate(text);
  }

  /**
   * A `suspend_tenant` rule triggered by a reply to `tenant`'s mail at `scope` (the destination, or its provider
   * for a provider's rule): held here at once, written to the gate by `share` (after the outcomes). Mail without a
   * tenant: nothing is held (logged).
   */
  ruleTriggered(tenant: string | undefined, scope: string, rule: ReplyRule, reply: LastReply, now: number): void {
    if (!tenant) {
      this.d.log.warn({ event: 'tenant_rule_without_tenant', scope, rule: rule.text, reply: formatReply(reply) },
        `${scope}: ${rule.text} matched mail without a tenant: nothing suspended`);
      return;
    }
    const until = now + rule.forMs;
    const key = holdKey(tenant, scope);
    const since = this.holds.find((h) => h.tenant === tenant && h.scope === scope && !h.manual && h.until > now)?.since ?? now;
    const active: DestinationRule = { index: rule.index, action: 'suspend', rule: rule.text, until, since, reply: formatReply(reply) };
    this.pending.set(key, active);
    this.holds = [...this.holds.filter((h) => !(h.tenant === tenant && h.scope === scope && !h.manual)),
      { tenant, scope, until, since, why: `${rule.text} after ${active.reply}`, manual: false }];
    this.d.log.warn({ event: 'tenant_suspended', tenant, scope, until: new Date(until).toISOString(), rule: rule.text, reply: active.reply },
      `tenant=${tenant} suspended at ${scope} until ${new Date(until).toISOString()}: ${rule.text} after ${active.reply}`);
  }

  /** Writes this node's rule triggers to the gate (every node reads them there within HOLD_REFRESH_MS). */
  async share(): Promise<void> {
    const now = this.d.clock();
    for (const [key, rule] of [...this.pending]) {
      await this.d.gate.putLimits(key, { rules: [rule] }, now).catch((err: unknown) => {
        this.d.log.warn({ event: 'qmgr_error', destination: key, err: (err as Error).message }, 'could not share a tenant suspension');
      });
      // Written (or not to be: it holds here till it ends): a newer trigger meanwhile is written next time.
      if (this.pending.get(key) === rule) this.pending.delete(key);
    }
  }

  /** The configured tenants and those this node found over their rate, for display. */
  states(now: number): TenantState[] {
    const names = new Set([...Object.keys(this.d.config().tenants), ...this.rateWaits.keys()]);
    return [...names].sort().map((tenant) => {
      const cfg = this.d.config().tenants[tenant];
      const until = this.rateWaits.get(tenant);
      return { tenant, weight: cfg?.weight ?? 1, ...(cfg?.rate !== undefined ? { rate: cfg.rate } : {}), ...(until !== undefined && until > now ? { rateLimitedUntil: until } : {}) };
    });
  }
}

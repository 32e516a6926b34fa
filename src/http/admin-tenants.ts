/**
 * http/admin-tenants — the operators' side of tenant limits, behind the
 * admin API and `halcyon tenant …` / `halcyon destinations` alike: the
 * suspensions in force (a rule's or an administrator's, every node's: hold
 * rows on the gate, queue/tenant-holds), an administrator's suspend
 * and resume, and per destination the tenants with waiting recipients,
 * whether one is held there (and why, until when) or, on a running server,
 * over its rate on this node.
 *
 * Does not route HTTP (http/routes does), does not log (the caller's audit
 * hook does) and decides nothing about delivery (destination/tenants does).
 */
import { parseDuration } from '../config/units.js';
import type { AdminQueue } from '../queue/admin-queue.js';
import type { TenantCount } from '../queue/recipient-queue.js';
import type { DestinationView } from '../destination/service.js';
import { EVERYWHERE, holdKey, holdOf, HOLD_PREFIX, manualHold, parseHoldKey, type TenantHold } from '../queue/tenant-holds.js';
import type { Tenants, TenantState } from '../destination/tenants.js';

/** A tenant at one destination, as `halcyon destinations` shows it. */
export interface DestinationTenant {
  readonly tenant: string;
  /** Its waiting recipients there (queued, deferred, in flight), every node's. */
  readonly queued: number;
  /** The suspension in force over it there (its scope: the destination, a domain of it, its provider or `*`). */
  readonly held?: TenantHold;
  /** A running server found its rate spent: its mail waits until then (this node's view). */
  readonly rateLimitedUntil?: number;
  /** Its `[tenants.NAME] rate`, when it has one. */
  readonly rate?: string;
}

/** `GET /api/tenants`: suspensions in force, the tenants' settings (and rate state on a running server), waiting recipients by route key. */
export interface TenantsReport {
  readonly holds: TenantHold[];
  readonly tenants: TenantState[];
  readonly queued: TenantCount[];
}

export interface TenantRequest {
  /**
   * Where: a key as `halcyon destinations` lists it — a destination (`mx:…`, `route:…`), one of the domains listed
   * under it (a route key) — or `provider:NAME`; absent → everywhere. (A routed domain is queued under its route's key.)
   */
  readonly destination?: string;
  /** suspend: "2h"; absent → until resumed. */
  readonly for?: string;
}

export class TenantError extends Error {
  constructor(readonly code: 'bad_request' | 'not_found', message: string) {
    super(message);
  }
}

export interface TenantAdminDeps {
  readonly store: Pick<AdminQueue, 'gate' | 'recipients'>;
  readonly clock: () => number;
  /** A running server's: route keys → destinations and provider scopes. */
  readonly view?: DestinationView;
  /** A running server's: rate state, and its copy of the holds (read again after a change). */
  readonly tenants?: Pick<Tenants, 'states' | 'refresh'>;
}

export class TenantAdmin {
  constructor(private readonly d: TenantAdminDeps) {}

  /** The suspensions in force now, every node's, in key order (scope, then tenant). */
  async holds(): Promise<TenantHold[]> {
    const now = this.d.clock();
    return (await this.d.store.gate.listRows(HOLD_PREFIX)).map((r) => holdOf(r, now)).filter((h): h is TenantHold => h !== undefined);
  }

  async report(): Promise<TenantsReport> {
    const [holds, queued] = await Promise.all([this.holds(), this.d.store.recipients.tenantCounts()]);
    return { holds, tenants: this.d.tenants?.states(this.d.clock()) ?? [], queued };
  }

  /** An administrator's suspension of `tenant` (at `destination`, or everywhere), for `for` or until resumed. */
  async suspend(tenant: string, req: TenantRequest, who: string): Promise<TenantHold> {
    const name = checkName(tenant);
    const scope = checkScope(req.destination);
    const forMs = req.for === undefined ? undefined : parseDuration(req.for);
    if (req.for !== undefined && (forMs === undefined || forMs <= 0)) throw new TenantError('bad_request', `for: expected a duration like "2h", got "${req.for}"`);
    const now = this.d.clock();
    const key = holdKey(name, scope);
    await this.d.store.gate.putLimits(key, { rules: [manualHold(now, forMs, who)] }, now);
    await this.d.tenants?.refresh(now, true);
    return holdOf({ key, limits: { rules: [manualHold(now, forMs, who)] } }, now)!;
  }

  /** Ends `tenant`'s suspensions (a rule's too) at `destination`, or all of them; returns how many were in force. */
  async resume(tenant: string, req: TenantRequest): Promise<{ resumed: number }> {
    const name = checkName(tenant);
    const now = this.d.clock();
    const rows = (await this.d.store.gate.listRows(HOLD_PREFIX)).filter((r) => {
      const at = parseHoldKey(r.key);
      return at?.tenant === name && (req.destination === undefined || r.key === holdKey(name, checkScope(req.destination)));
    });
    let resumed = 0;
    for (const r of rows) {
      if (holdOf(r, now)) resumed++;
      await this.d.store.gate.putDestination({ key: r.key, health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: now });
    }
    await this.d.tenants?.refresh(now, true);
    return { resumed };
  }

  /**
   * The tenants of each listed destination: waiting recipients (route keys folded into their destination as
   * the listing folds them), the hold over each there, this node's rate state. `routeKeysOf(key)`: the route
   * keys the listing folded into `key`.
   */
  async perDestination(keys: readonly string[], routeKeysOf: (key: string) => readonly string[]): Promise<Map<string, DestinationTenant[]>> {
    const [holds, counts] = await Promise.all([this.holds(), this.d.store.recipients.tenantCounts()]);
    const now = this.d.clock();
    const states = new Map((this.d.tenants?.states(now) ?? []).map((s) => [s.tenant, s]));
    const byRouteKey = new Map<string, TenantCount[]>();
    for (const c of counts) {
      const at = byRouteKey.get(c.destination);
      if (at) at.push(c);
      else byRouteKey.set(c.destination, [c]);
    }
    const out = new Map<string, DestinationTenant[]>();
    for (const key of keys) {
      const routeKeys = new Set([key, ...routeKeysOf(key)]);
      const scopes = new Set([EVERYWHERE, ...routeKeys, this.d.view?.scopeOf(key) ?? key]);
      const queued = new Map<string, number>();
      for (const c of [...routeKeys].flatMap((k) => byRouteKey.get(k) ?? [])) queued.set(c.tenant, (queued.get(c.tenant) ?? 0) + c.queued);
      // A tenant held there is shown even with nothing waiting (its mail may be queued later).
      for (const h of holds) if (h.scope !== EVERYWHERE && scopes.has(h.scope) && !queued.has(h.tenant)) queued.set(h.tenant, 0);
      const list = [...queued].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([tenant, n]): DestinationTenant => {
        const held = holds.filter((h) => h.tenant === tenant && scopes.has(h.scope)).sort((a, b) => b.until - a.until)[0];
        const st = states.get(tenant);
        return {
          tenant, queued: n, ...(held ? { held } : {}), ...(st?.rateLimitedUntil !== undefined ? { rateLimitedUntil: st.rateLimitedUntil } : {}),
          ...(st?.rate !== undefined ? { rate: st.rate } : {}),
        };
      });
      if (list.length > 0) out.set(key, list);
    }
    return out;
  }
}

/** A tenant name as intake stores it: printable, 1–128 characters. */
function checkName(tenant: string): string {
  if (!/^[^\x00-\x1f\x7f]{1,128}$/.test(tenant) || tenant.trim() !== tenant) throw new TenantError('bad_request', 'a tenant name is 1–128 printable characters, not padded with spaces');
  return tenant;
}

/** A scope of a hold: a destination key, a domain, `provider:NAME`; no spaces (the hold key splits there). */
function checkScope(destination: string | undefined): string | undefined {
  if (destination === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(destination) || destination === EVERYWHERE) throw new TenantError('bad_request', 'destination: expected a destination key, a domain or provider:NAME');
  return destination.includes(':') ? destination : destination.toLowerCase();
}

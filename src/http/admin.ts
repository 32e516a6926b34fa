/**
 * http/admin — the queue operations an operator performs (list and search,
 * show, flush, hold, release, delete, bounce, destinations, inject, the
 * queue's shape, a message's content, this node's throughput), written once
 * over the admin side of the queue (queue/admin-queue: reads, flush, hold,
 * delete, a destination's reset, and a bounce that claims before it fails
 * anything, so never a recipient in flight) so the admin API (http/routes) and the CLI's direct backend
 * (a stopped server's data_dir) behave the same.
 *
 * It implements `AdminApi` (http/admin-api: the contract, its shapes and
 * `AdminError`, which the CLI's HTTP backend implements too). Does not speak
 * HTTP and does not format text. Injection is http/inject's (through intake/,
 * like every other message); this class gives it the acting token and logs.
 */
import { randomUUID } from 'node:crypto';
import { domainOf, formatMailbox, parseMailbox, parsePath, isAddressError, type Mailbox } from '../smtp/address.js';
import type { Config } from '../config/schema.js';
import type { RecipientDirectory } from '../inbound/envelope.js';
import type { Accepted, Intake } from '../intake/intake.js';
import type { InjectResult } from './inject.js';
import type { TokenBuckets } from './token-bucket.js';
import type { DestinationView } from '../destination/service.js';
import type { DestinationRow, LastReply, DestinationState, MessageRow, NewRecipient, NextTry, RecipientRow, Trace } from '../queue/model.js';
import type { AdminQueue } from '../queue/admin-queue.js';
import { queueShape, senderShape, SHAPE_BOUNDS_MS, SHAPE_BY, type QueueShape, type ShapeBy } from './queue-shape.js';
import type { Throughput } from './throughput.js';
import type { RecentFailures } from './failures.js';
import { SuppressionAdmin, SuppressionError, type SuppressRequest, type SuppressionView } from './admin-suppression.js';
import { TenantAdmin, TenantError, type TenantRequest, type TenantsReport } from './admin-tenants.js';
import { parseHoldKey, type TenantHold } from '../queue/tenant-holds.js';
import type { Tenants } from '../destination/tenants.js';
import type { SuppressionEntry } from '../queue/suppression.js';
import type { BounceClass } from '../smtp/bounce-class.js';
import { shippedClassifier } from '../config/bounce-rules-file.js';
import type { HalcyonError } from '../errors.js';
import type { AliasReport } from '../local/alias-source.js';
import {
  AdminError, queueTroubleError, type AdminApi, type BlockedDestination, type DestinationInfo, type FlushResult, type HoldTarget, type InjectRequest,
  type ListFilter, type MessageDetail, type QueueEntry, type TlsReport,
} from './admin-api.js';
import type { Actor, AdminAction, AdminVerb } from './audit.js';

export interface AdminDeps {
  /** The admin side of the queue only (queue/admin-queue): no claims of due work, no outcome for a recipient it did not claim. */
  readonly store: AdminQueue;
  /** Where injected messages go (trace header, Message-ID/Date, the queue write), as every new message does; absent where injection is refused. */
  readonly intake?: Intake;
  readonly clock: () => number;
  readonly maxMessageSize: () => number;
  /** The configuration in force, for `config()`. */
  readonly config: () => Config;
  /** Absent on a stopped data_dir: injection is then refused. */
  readonly directory?: () => RecipientDirectory;
  /** Today's TLS-RPT figures per policy domain, every node's (delivery/tls-sessions over queue/tls-reports). */
  readonly tlsReports?: () => Promise<ReadonlyMap<string, TlsReport>>;
  /** Destinations as the scheduler sees them (a running server only). */
  readonly destinationView?: DestinationView;
  /** The tenants' rate state and this node's copy of their holds (a running server only). */
  readonly tenants?: Pick<Tenants, 'states' | 'refresh'>;
  /** Ask the scheduler to look at the queue now (a running server only). */
  readonly poke?: () => void;
  /** After an injected message is durably queued (metrics, the "accepted" log line). */
  readonly onInjected?: (accepted: Accepted, from: string, nrcpt: number, trace: Trace) => void;
  /** Requests per second per API token on the injection API ([inject] rate); absent → no limit (the CLI). */
  readonly injectBuckets?: TokenBuckets;
  /** After recipients were failed by an administrator (the per-recipient log line, metrics). */
  readonly onBounced?: (id: string, addresses: readonly string[], reply: LastReply, destinations: readonly string[]) => void;
  /** The bounce classifier in force (smtp/bounce-rules); unset → the shipped rules. */
  readonly classify?: (r: LastReply) => BounceClass;
  /** Who acts through this instance (`withActor`: the API token's name per request; the CLI's Unix user). */
  readonly actor?: Actor;
  /** One line per action taken: what, who, every queue id touched (http/audit formats it). */
  readonly onAction?: (action: AdminAction, actor: Actor) => void;
  /** Why the queue cannot be used now (failed: HAL_ERR_QUEUE_FAILED, unreachable: HAL_ERR_QUEUE_UNAVAILABLE; queue/health); undefined while healthy. */
  readonly queueTrouble?: () => HalcyonError | undefined;
  /** This node's outcomes per minute (http/throughput; a running server only). */
  readonly throughput?: () => Throughput;
  /** This node's recent failures by class (http/failures; a running server only). */
  readonly failures?: () => RecentFailures;
  /** Reads the aliases file again now (`halcyon newaliases`); throws when none is configured or it cannot be read (a running server only). */
  readonly reloadAliases?: () => AliasReport;
}

/** How long a bounce holds the recipients it claimed (its claim and its write follow each other at once). */
const BOUNCE_LEASE_MS = 60_000;

const SUMMARY_HEADERS = ['subject', 'from', 'to', 'cc', 'date', 'message-id'];

/** Unfolded values of a few headers from the header block. */
export function headerSummary(body: Buffer): Record<string, string> {
  const end = body.indexOf('\r\n\r\n');
  const block = body.toString('utf8', 0, end < 0 ? Math.min(body.length, 64 * 1024) : end).replace(/\r?\n[ \t]+/g, ' ');
  const out: Record<string, string> = {};
  for (const line of block.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    if (SUMMARY_HEADERS.includes(name) && out[name] === undefined) out[name] = line.slice(i + 1).trim();
  }
  return out;
}

export class Admin implements AdminApi {
  constructor(private readonly d: AdminDeps) {}

  /** The same operations, logged as taken by `actor` (one instance per admin API request). */
  withActor(actor: Actor): Admin {
    return new Admin({ ...this.d, actor });
  }

  private audit(action: AdminVerb, ids: readonly string[], detail?: Record<string, unknown>): void {
    this.d.onAction?.({ action, ids, detail }, this.d.actor ?? { who: 'internal', via: 'api' });
  }

  /** Ids of the messages with a waiting (queued or deferred) recipient in the selection: what a flush acts on. */
  private async waitingIds(sel: { domain?: string; id?: string }, pick: (r: RecipientRow) => boolean = () => true): Promise<string[]> {
    const lists = sel.id || sel.domain
      ? [await this.d.store.recipients.listMessages({ domain: sel.domain, messageId: sel.id })]
      : await Promise.all((['queued', 'deferred'] as const).map((state) => this.d.store.recipients.listMessages({ state })));
    const domain = sel.domain?.toLowerCase();
    const ids = new Set<string>();
    for (const e of lists.flat()) {
      if (e.recipients.some((r) => (r.state === 'queued' || r.state === 'deferred') && (!domain || domainOf(r.address).toLowerCase() === domain) && pick(r))) ids.add(e.message.id);
    }
    return [...ids].sort();
  }

  async health(): Promise<{ ok: true }> {
    const trouble = this.d.queueTrouble?.();
    if (trouble) throw queueTroubleError(trouble) ?? new AdminError('unavailable', `queue storage failed: ${trouble.message}; stop the server and run 'halcyon queue check'`);
    return { ok: true };
  }

  async list(filter: ListFilter): Promise<QueueEntry[]> {
    const olderThan = filter.olderThanMs === undefined ? undefined : this.d.clock() - filter.olderThanMs;
    const q = filter.q?.trim().toLowerCase() || undefined;
    // The queue searches its rows: queue id, sender, recipients and the Message-ID (a column since schema 8).
    const search = q === undefined ? undefined : { text: q };
    return this.withNextTry(await this.d.store.recipients.listMessages({ domain: filter.domain, state: filter.state, olderThan, limit: filter.limit, search }));
  }

  async shape(by: ShapeBy = 'domain'): Promise<QueueShape> {
    if (!SHAPE_BY.includes(by)) throw new AdminError('bad_request', `by must be one of ${SHAPE_BY.join(', ')}`);
    if (by === 'sender-domain') return senderShape(await this.d.store.recipients.senderShapeCounts(this.d.clock(), SHAPE_BOUNDS_MS));
    const counts = await this.d.store.recipients.shapeCounts(this.d.clock(), SHAPE_BOUNDS_MS);
    return queueShape(counts, by, by === 'destination' ? (c) => this.gateOf(c.destination) : undefined);
  }

  async content(id: string): Promise<Buffer> {
    await this.mustGet(id);
    try {
      return await this.d.store.messages.getBody(id);
    } catch (err) {
      // Removed between the two reads (delivered and cleaned up); any other failure is the storage's.
      if ((err as { code?: unknown }).code === 'HAL_ERR_QUEUE_NOT_FOUND') throw new AdminError('not_found', `no message ${id} in the queue`);
      throw err;
    }
  }

  async throughput(): Promise<Throughput> {
    if (!this.d.throughput) throw new AdminError('unavailable', 'throughput is counted by a running server');
    return this.d.throughput();
  }

  private get suppressionAdmin(): SuppressionAdmin {
    return new SuppressionAdmin(this.d.store.suppressions, this.d.config, this.d.clock);
  }

  async suppressions(f: { q?: string; limit?: number; all?: boolean }): Promise<SuppressionView[]> {
    return this.suppressionAdmin.list(f);
  }

  async suppress(req: SuppressRequest): Promise<SuppressionEntry> {
    try {
      const e = await this.suppressionAdmin.add(req);
      this.audit('suppress', [], { addresses: [e.address], class: e.class, until: new Date(e.until).toISOString() });
      return e;
    } catch (err) {
      throw err instanceof SuppressionError ? new AdminError('bad_request', err.message) : err;
    }
  }

  async unsuppress(addresses: readonly string[]): Promise<{ removed: number }> {
    const removed = await this.suppressionAdmin.remove(addresses);
    this.audit('unsuppress', [], { addresses, removed });
    return { removed };
  }

  async importSuppressions(csv: string): Promise<{ imported: number; problems: string[] }> {
    const r = await this.suppressionAdmin.import(csv);
    if (r.problems.length > 0) throw new AdminError('bad_request', `nothing imported: ${r.problems.slice(0, 20).join('; ')}`);
    this.audit('suppression import', [], { imported: r.imported });
    return r;
  }

  async exportSuppressions(all = false): Promise<string> {
    return this.suppressionAdmin.export(all);
  }

  private get tenantAdmin(): TenantAdmin {
    return new TenantAdmin({ store: this.d.store, clock: this.d.clock, ...(this.d.destinationView ? { view: this.d.destinationView } : {}), ...(this.d.tenants ? { tenants: this.d.tenants } : {}) });
  }

  async tenants(): Promise<TenantsReport> {
    return this.tenantAdmin.report();
  }

  /** `halcyon tenant suspend NAME [--destination D] [--for T]` (http/admin-tenants). */
  async suspendTenant(tenant: string, req: TenantRequest): Promise<TenantHold> {
    const hold = await this.tenantAdmin.suspend(tenant, req, this.d.actor?.who ?? 'internal').catch(tenantError);
    this.audit('tenant suspend', [], { tenant, scope: hold.scope, ...(req.for !== undefined ? { for: req.for } : {}) });
    this.d.poke?.();
    return hold;
  }

  /** `halcyon tenant resume NAME [--destination D]`: its suspensions there (all, without D) end; its mail is claimed again at once. */
  async resumeTenant(tenant: string, req: TenantRequest): Promise<{ resumed: number }> {
    const r = await this.tenantAdmin.resume(tenant, req).catch(tenantError);
    this.audit('tenant resume', [], { tenant, ...(req.destination !== undefined ? { scope: req.destination } : {}), resumed: r.resumed });
    this.d.poke?.();
    return r;
  }

  /** `halcyon newaliases`: the aliases file read again now; its refused entries are in the report. */
  async reloadAliases(): Promise<AliasReport> {
    if (!this.d.reloadAliases) throw new AdminError('unavailable', 'the aliases file is read by a running server');
    const r = this.d.reloadAliases();
    this.audit('newaliases', [], { file: r.file, aliases: r.aliases, refused: r.problems.length });
    return r;
  }

  async failures(): Promise<RecentFailures> {
    if (!this.d.failures) throw new AdminError('unavailable', 'recent failures are counted by a running server');
    return this.d.failures();
  }

  /** Adds `next` to each waiting recipient, from its destination's health (one read per destination). */
  private async withNextTry(entries: readonly { message: MessageRow; recipients: RecipientRow[] }[]): Promise<QueueEntry[]> {
    const keys = new Set(entries.flatMap((e) => e.recipients.filter((r) => r.state === 'queued' || r.state === 'deferred').map((r) => this.gateOf(r.destination))));
    const health = new Map<string, DestinationRow | undefined>();
    await Promise.all([...keys].map(async (k) => { health.set(k, await this.d.store.gate.getDestination(k)); }));
    return entries.map((e) => ({
      message: e.message,
      recipients: e.recipients.map((r) => (r.state === 'queued' || r.state === 'deferred' ? { ...r, next: nextTry(e.message, r, health.get(this.gateOf(r.destination))) } : r)),
    }));
  }

  /** The destination (gate row) a queued key goes to: the host set a domain maps to, when the scheduler knows it. */
  private gateOf(queued: string): string {
    return this.d.destinationView?.destinationOf(queued) ?? queued;
  }

  async show(id: string): Promise<MessageDetail> {
    const message = await this.mustGet(id);
    const [rows, attempts, body] = await Promise.all([this.d.store.recipients.getRecipients(id), this.d.store.recipients.getAttempts(id), this.d.store.messages.getBody(id)]);
    const [entry] = await this.withNextTry([{ message, recipients: rows }]);
    return {
      message,
      headers: headerSummary(body),
      recipients: (entry?.recipients ?? rows).map((r) => ({ ...r, history: attempts.filter((a) => a.recipientId === r.id) })),
    };
  }

  /**
   * Makes the selection's deferred recipients due now. `flushed` counts only those that can actually
   * go: recipients behind a destination in backoff (or suspended), or of a held message, are counted
   * in `blocked` with what they wait for — `force` clears the backoff of the destinations involved.
   */
  async flush(opts: { domain?: string; id?: string; force?: boolean }): Promise<FlushResult> {
    const now = this.d.clock();
    const held = opts.id ? (await this.mustGet(opts.id)).held : false;
    const reset: string[] = [];
    /** Recipients already due by their own time that waited only for a destination --force opened. */
    let unblocked = 0;
    if (opts.force) {
      // A destination in backoff is never claimed from: --force clears the backoff of the destinations involved.
      const entries = await this.d.store.recipients.listMessages({ domain: opts.domain, messageId: opts.id });
      // Recipients are queued under their domains; the backoff belongs to the host set a domain maps to.
      const waiting = entries.flatMap((e) => e.recipients.filter((r) => r.state === 'queued' || r.state === 'deferred'));
      for (const key of new Set(waiting.map((r) => this.gateOf(r.destination)))) {
        const row = await this.d.store.gate.getDestination(key);
        if (row && row.health !== 'ok') {
          await this.d.store.gate.putDestination(clearedDestination(key, now));
          reset.push(key);
        }
      }
      unblocked = waiting.filter((r) => reset.includes(this.gateOf(r.destination)) && r.nextAttemptAt <= now).length;
    }
    const touched = await this.waitingIds(opts);
    const made = (await this.d.store.recipients.flush({ domain: opts.domain, messageId: opts.id, now })) + unblocked;
    const blocked = held ? [] : await this.blockedDestinations(opts, now);
    const behind = blocked.reduce((n, b) => n + b.recipients, 0);
    this.audit('flush', touched, { domain: opts.domain, force: opts.force || undefined, reset: reset.length ? reset : undefined });
    this.d.poke?.();
    return { flushed: held ? 0 : Math.max(0, made - behind), reset, blocked, ...(held ? { held: made } : {}) };
  }

  /** The selection's destinations that will not take a connection now, with their waiting recipients. */
  private async blockedDestinations(opts: { domain?: string; id?: string }, now: number): Promise<BlockedDestination[]> {
    const counts = new Map<string, number>();
    if (opts.id || opts.domain) {
      const entries = await this.d.store.recipients.listMessages({ domain: opts.domain, messageId: opts.id });
      for (const e of entries) {
        for (const r of e.recipients) {
          if (r.state !== 'queued' && r.state !== 'deferred') continue;
          if (opts.domain && domainOf(r.address).toLowerCase() !== opts.domain.toLowerCase()) continue;
          const key = this.gateOf(r.destination);
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }
    }
    const rows: (DestinationRow & { queued?: number })[] = opts.id || opts.domain
      ? (await Promise.all([...counts.keys()].map((k) => this.d.store.gate.getDestination(k)))).filter((r): r is DestinationRow => r !== undefined)
      : (await this.d.store.gate.listDestinations()).filter((r) => r.queued > 0);
    return rows
      .filter((r) => r.health === 'suspended' || (r.health === 'backoff' && r.backoffUntil > now))
      .map((r) => ({
        destination: r.key, why: r.health === 'suspended' ? 'suspended' as const : 'backoff' as const, until: r.backoffUntil,
        recipients: counts.get(r.key) ?? r.queued ?? 0,
      }));
  }

  async hold(target: HoldTarget, held: boolean): Promise<{ ids: string[] }> {
    let ids: string[];
    if (target.id) ids = [target.id];
    else if (target.domain) ids = (await this.d.store.recipients.listMessages({ domain: target.domain })).map((e) => e.message.id);
    else throw new AdminError('bad_request', 'give a message id or a domain');
    const done: string[] = [];
    for (const id of ids) if (await this.d.store.recipients.setHeld(id, held)) done.push(id);
    if (target.id && done.length === 0) throw new AdminError('not_found', `no message ${target.id} in the queue`);
    this.audit(held ? 'hold' : 'release', done, { domain: target.domain });
    if (!held) this.d.poke?.();
    return { ids: done };
  }

  async remove(ids: readonly string[]): Promise<{ deleted: number }> {
    // Which of them exist is read first, so the log names the messages actually removed.
    const present = (await Promise.all(ids.map(async (id) => ((await this.d.store.messages.getMessage(id)) ? id : undefined)))).filter((id): id is string => id !== undefined);
    const deleted = await this.d.store.messages.deleteMessages(ids);
    this.audit('delete', present);
    return { deleted };
  }

  /**
   * Fails every waiting recipient with 5.0.0; the DSN sweep then sends the
   * report. The waiting recipients are claimed first (as a delivery claims
   * them) and only what was claimed is failed, in one commit: a recipient in
   * flight — even one a node claimed a moment ago — is skipped, as its
   * delivery may be succeeding right now, and a "failed" DSN for a delivered
   * message is worse than asking again.
   */
  async bounce(id: string): Promise<{ bounced: number; skipped: number }> {
    await this.mustGet(id);
    const now = this.d.clock();
    // An owner of its own: no node's start releases it, and nobody else's outcome lands on these rows meanwhile.
    const owner = `admin:${randomUUID()}`;
    const claimed = await this.d.store.recipients.claimWaiting(id, { now, owner, leaseUntil: now + BOUNCE_LEASE_MS });
    const reply: LastReply = { code: 550, enhanced: '5.0.0', text: 'bounced by administrator', command: 'admin' };
    const classified: LastReply = { ...reply, class: (this.d.classify ?? ((x) => shippedClassifier().classify(x)))(reply) };
    const applied = new Set(await this.d.store.recipients.recordOutcomes(claimed.map((r) => ({
      recipientId: r.id,
      outcome: { kind: 'failed', reply: classified },
    })), now, owner));
    const bounced = claimed.filter((r) => applied.has(r.id));
    const skipped = (await this.d.store.recipients.getRecipients(id)).filter((r) => r.state === 'inflight').length;
    // The administrator's line first, then what it did to each recipient.
    this.audit('bounce', [id], { recipients: bounced.length, skipped });
    this.d.onBounced?.(id, bounced.map((r) => r.address), classified, bounced.map((r) => r.destination));
    this.d.poke?.();
    return { bounced: bounced.length, skipped };
  }

  /**
   * One entry per destination: recipients are queued under their domains, so a domain the scheduler maps
   * to an MX host set is folded into that destination (its queued count added, its name listed).
   */
  async destinations(): Promise<DestinationInfo[]> {
    const list = await this.listDestinations();
    // The tenants waiting at each, held there or over their rate (http/admin-tenants).
    const domains = new Map(list.map((x) => [x.key, x.domains ?? []]));
    const tenants = await this.tenantAdmin.perDestination(list.map((x) => x.key), (key) => domains.get(key) ?? []);
    const withTenants = list.map((d) => (tenants.has(d.key) ? { ...d, tenants: tenants.get(d.key)! } : d));
    return withTlsReports(withTenants, (await this.d.tlsReports?.()) ?? new Map<string, TlsReport>(), this.d.clock());
  }

  private async listDestinations(): Promise<DestinationInfo[]> {
    // Rows, waiting recipients and open connections (slots) of every node on the queue; a tenant's hold rows are not destinations.
    const rows = (await this.d.store.gate.listDestinations()).filter((x) => parseHoldKey(x.key) === undefined);
    const view = this.d.destinationView;
    if (!view) return rows;
    const now = this.d.clock();
    const byKey = new Map<string, DestinationInfo>();
    const folded: DestinationInfo[] = [];
    for (const r of rows) {
      const gate = view.destinationOf(r.key);
      if (gate !== undefined && gate !== r.key) folded.push({ ...r, key: gate });
      else byKey.set(r.key, r);
    }
    const ensure = (key: string): DestinationInfo => {
      let e = byKey.get(key);
      if (!e) byKey.set(key, (e = { ...clearedDestination(key, now), generation: 0, queued: 0, connections: 0 }));
      return e;
    };
    for (const f of folded) {
      const e = ensure(f.key);
      byKey.set(f.key, { ...e, queued: e.queued + f.queued, connections: e.connections + f.connections });
    }
    for (const k of view.known()) ensure(k);
    return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key)).map((r) => {
      const domains = view.routeKeysOf(r.key);
      // A provider's rules in force and adaptive rate are on its scope's row (`provider:<name>`).
      const scope = view.scopeOf(r.key);
      return { ...r, ...(domains.length > 0 ? { domains } : {}), politeness: view.politeness(r.key, r.limits, scope !== r.key ? byKey.get(scope)?.limits : undefined) };
    });
  }

  async resetDestination(key: string): Promise<{ flushed: number }> {
    const now = this.d.clock();
    // An MX host set's recipients are queued under its domains: they are flushed with it.
    const domains = this.d.destinationView?.routeKeysOf(key) ?? [];
    const known = domains.length > 0 || (await this.d.store.gate.listDestinations()).some((r) => r.key === key);
    if (!known) throw new AdminError('not_found', `no destination ${key}`);
    const queued = new Set([key, ...domains]);
    const touched = await this.waitingIds({}, (r) => queued.has(r.destination));
    await this.d.store.gate.putDestination(clearedDestination(key, now));
    let flushed = 0;
    for (const q of [key, ...domains]) flushed += await this.d.store.recipients.flush({ destination: q, now });
    this.audit('destination reset', touched, { destination: key });
    this.d.poke?.();
    return { flushed };
  }

  /** The old request shape (`to`, `content` or `content_base64`) through the injection API's one handler; a refusal is an AdminError. */
  async inject(req: InjectRequest, trace: Partial<Trace> = {}): Promise<{ id: string }> {
    const r = await this.injectV1({ from: req.from, to: req.to, ...(req.content !== undefined ? { content: req.content } : {}), ...(req.contentBase64 !== undefined ? { content_base64: req.contentBase64 } : {}) }, undefined, trace);
    if (r.body.queue_id === null) throw new AdminError('bad_request', r.body.recipients.map((x) => `to <${x.email}>: ${x.reason}`).join('; '));
    return { id: r.body.queue_id };
  }

  /**
   * POST /api/inject/v1 (http/inject): the request queued through intake, with its Idempotency-Key; keys and the
   * rate are the acting token's. Each message queued gets its accepted line (`onInjected`) and an audit line.
   */
  async injectV1(body: unknown, idempotencyKey?: string, trace: Partial<Trace> = {}): Promise<InjectResult> {
    const directory = this.d.directory?.();
    const intake = this.d.intake;
    if (!directory || !intake) throw new AdminError('unavailable', 'injection needs the server configuration');
    const token = this.d.actor?.via === 'api' ? this.d.actor.who : `cli:${this.d.actor?.who ?? 'internal'}`;
    // Loaded on first use: a CLI listing never loads the composer (nodemailer) nor intake's helpers.
    const { Injector } = await import('./inject.js');
    const injector = new Injector({
      intake, directory, idempotency: this.d.store.idempotency, suppressions: this.d.store.suppressions, clock: this.d.clock, config: this.d.config,
      maxMessageSize: this.d.maxMessageSize, ...(this.d.actor?.via === 'api' && this.d.injectBuckets ? { buckets: this.d.injectBuckets } : {}),
    });
    const r = await injector.inject(body, { token, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}), trace });
    const fullTrace: Trace = { clientIp: '127.0.0.1', clientHelo: 'localhost', protocol: 'HTTP', listener: 'http', ...trace };
    for (const q of r.queued) this.d.onInjected?.(q.accepted, q.from, q.nrcpt, fullTrace);
    if (r.queued.length > 0 || r.replayed) {
      this.audit('inject', r.queued.map((q) => q.accepted.id), {
        ...(r.replayed ? { replayed: true, queue_id: r.body.queue_id } : {}),
        ...(idempotencyKey !== undefined ? { idempotency_key: idempotencyKey } : {}),
        nrcpt: r.body.recipients.filter((x) => x.status === 'accepted').length, rejected: r.body.recipients.filter((x) => x.status === 'rejected').length,
      });
    }
    if (r.queued.length > 0) this.d.poke?.();
    return r;
  }

  async config(): Promise<Config> {
    return redactConfig(this.d.config());
  }

  private async mustGet(id: string): Promise<MessageRow> {
    const m = await this.d.store.messages.getMessage(id);
    if (!m) throw new AdminError('not_found', `no message ${id} in the queue`);
    return m;
  }
}

export function nextTry(m: MessageRow, r: RecipientRow, dest: DestinationRow | undefined): NextTry {
  if (m.held) return { at: r.nextAttemptAt, why: 'held' };
  if (dest?.health === 'suspended') return { at: r.nextAttemptAt, why: 'destination suspended' };
  if (dest?.health === 'backoff' && dest.backoffUntil >= r.nextAttemptAt) return { at: dest.backoffUntil, why: 'destination backoff' };
  return { at: r.nextAttemptAt, why: 'retry' };
}

/**
 * TLS-RPT counts (today's, every node's, per policy domain) on the destination the domain goes to:
 * the one keyed by the domain or listing it among its domains; a destination of its own when none does yet.
 */
function withTlsReports(list: DestinationInfo[], reports: ReadonlyMap<string, TlsReport>, now: number): DestinationInfo[] {
  if (reports.size === 0) return list;
  const out = [...list];
  for (const [domain, report] of reports) {
    let at = out.findIndex((d) => d.key === domain || (d.domains ?? []).includes(domain));
    if (at < 0) at = out.push({ ...clearedDestination(domain, now), generation: 0, queued: 0, connections: 0 }) - 1;
    const d = out[at]!;
    out[at] = { ...d, tlsReports: [...(d.tlsReports ?? []), { domain, ...report }] };
  }
  return out;
}

/** A refusal of http/admin-tenants as the API's error. */
function tenantError(err: unknown): never {
  throw err instanceof TenantError ? new AdminError(err.code, err.message) : err;
}

/** A destination with no backoff and no failures: what "reset" writes. */
export function clearedDestination(key: string, now: number): DestinationState {
  return { key, health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: now };
}

/** The configuration with its secrets (password hashes, the admin token, route passwords) replaced by "(hidden)". */
export function redactConfig(cfg: Config): Config {
  const hidden = '(hidden)';
  const routes = Object.fromEntries(Object.entries(cfg.routes).map(([k, r]) =>
    [k, typeof r === 'object' && !Array.isArray(r) && r.auth ? { ...r, auth: { ...r.auth, password: hidden } } : r]));
  return {
    ...cfg,
    users: cfg.users.map((u) => ({ ...u, password_hash: hidden })),
    routes,
    http: { ...cfg.http, ...(cfg.http.token !== undefined ? { token: hidden } : {}), tokens: cfg.http.tokens.map((t) => ({ ...t, token: hidden })) },
  };
}

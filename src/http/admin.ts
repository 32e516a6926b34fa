/**
 * http/admin — the queue operations an operator performs (list, show, flush,
 * hold, release, delete, bounce, destinations, inject), written once over the
 * Store so the admin API (http/routes) and the CLI's direct backend (a stopped
 * server's data_dir) behave the same.
 *
 * `AdminApi` is also the interface the CLI's HTTP backend implements, so a
 * command does not care whether it talks to a running server or to the file.
 * Does not speak HTTP and does not format text; errors are `AdminError`s with
 * a code that maps to an HTTP status. An injected message is queued through
 * intake/ (trace header, Message-ID/Date, the queue write) like every other.
 */
import { formatMailbox, parseMailbox, parsePath, isAddressError, type Mailbox } from '../smtp/address.js';
import type { RecipientDirectory } from '../inbound/envelope.js';
import type { Intake } from '../intake/intake.js';
import type { PolitenessView } from '../scheduler/politeness.js';
import type { AttemptRow, DestinationRow, DestinationState, MessageRow, NewRecipient, RecipientRow, RecipientState, Trace } from '../queue/model.js';
import { FINAL_STATES } from '../queue/model.js';
import type { Queue } from '../queue/store.js';

export type AdminErrorCode = 'not_found' | 'bad_request' | 'too_big' | 'unavailable';

export class AdminError extends Error {
  constructor(readonly code: AdminErrorCode, message: string) {
    super(message);
    this.name = 'AdminError';
  }
  get status(): number {
    switch (this.code) {
      case 'not_found': return 404;
      case 'bad_request': return 400;
      case 'too_big': return 413;
      case 'unavailable': return 503;
    }
  }
}

export interface QueueEntry { readonly message: MessageRow; readonly recipients: RecipientRow[] }
export interface ListFilter { readonly domain?: string; readonly state?: RecipientState; readonly olderThanMs?: number }
export interface MessageDetail {
  readonly message: MessageRow;
  /** A few headers of the stored message (Subject, From, To, Cc, Date, Message-ID), unfolded. */
  readonly headers: Record<string, string>;
  readonly recipients: (RecipientRow & { readonly history: AttemptRow[] })[];
}
/** TLS-RPT (RFC 8460) session counts of an MTA-STS policy domain since the server started. */
export interface TlsReport { readonly mode: string; readonly success: number; readonly failure: number; readonly lastFailure?: string }
export interface DestinationInfo extends DestinationRow {
  readonly queued: number;
  readonly connections: number;
  /** The queued keys (recipient domains) known to go to this destination (an MX host set), when there are others than itself. */
  readonly domains?: readonly string[];
  /** Connection and recipient limits now, what was learned and the reply rules in force (a running server only). */
  readonly politeness?: PolitenessView;
  /** TLS-RPT counts of the MTA-STS policy domains that go to this destination (a running server only). */
  readonly tlsReports?: readonly (TlsReport & { readonly domain: string })[];
}

/** What the running scheduler knows about destinations beyond the queue's rows (scheduler/destination-map, scheduler/politeness). */
export interface DestinationView {
  /** The destination a queued key (a domain) goes to, when the scheduler has mapped it. */
  gateOf(queued: string): string | undefined;
  domainsOf(key: string): string[];
  limits(key: string): PolitenessView;
  /** Destinations with something learned or a rule in force. */
  keys(): string[];
}
export interface InjectRequest { readonly from: string; readonly to: readonly string[]; readonly content: string }
export interface HoldTarget { readonly id?: string; readonly domain?: string }

export interface AdminApi {
  list(filter: ListFilter): Promise<QueueEntry[]>;
  show(id: string): Promise<MessageDetail>;
  flush(opts: { domain?: string; id?: string; force?: boolean }): Promise<{ flushed: number; reset: string[] }>;
  hold(target: HoldTarget, held: boolean): Promise<{ ids: string[] }>;
  remove(ids: readonly string[]): Promise<{ deleted: number }>;
  bounce(id: string): Promise<{ bounced: number; skipped: number }>;
  destinations(): Promise<DestinationInfo[]>;
  resetDestination(key: string): Promise<{ flushed: number }>;
  inject(req: InjectRequest, trace?: Partial<Trace>): Promise<{ id: string }>;
  /** Throws AdminError 'unavailable' once the queue's storage has failed (a running server only). */
  health?(): Promise<{ ok: true }>;
}

export interface AdminDeps {
  readonly store: Queue;
  /** Where injected messages go (trace header, Message-ID/Date, the queue write), as every new message does. */
  readonly intake: Intake;
  readonly clock: () => number;
  readonly maxMessageSize: () => number;
  /** Absent on a stopped data_dir: injection is then refused. */
  readonly directory?: () => RecipientDirectory;
  /** TLS-RPT counts per MTA-STS policy domain (a running server only); shown on the destination of that domain. */
  readonly tlsReports?: () => ReadonlyMap<string, TlsReport>;
  /** Destinations as the scheduler sees them (a running server only). */
  readonly destinationView?: DestinationView;
  /** Ask the scheduler to look at the queue now (a running server only). */
  readonly poke?: () => void;
  /** After an injected message is durably queued (metrics, the "accepted" log line). */
  readonly onInjected?: (id: string, req: InjectRequest, trace: Trace) => void;
  /** After recipients were failed by an administrator (the per-recipient log line, metrics). */
  readonly onBounced?: (id: string, addresses: readonly string[]) => void;
  /** Why the queue's storage failed, once it has (queue/worker-store); undefined while healthy. */
  readonly storageFailure?: () => Error | undefined;
}

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

/** Any line ending → CRLF, so the stored message is what SMTP would have stored. */
export function toCrlf(text: string): Buffer {
  return Buffer.from(text.replace(/\r\n|\r|\n/g, '\r\n'), 'utf8');
}

export class Admin implements AdminApi {
  constructor(private readonly d: AdminDeps) {}

  async health(): Promise<{ ok: true }> {
    const failed = this.d.storageFailure?.();
    if (failed) throw new AdminError('unavailable', `queue storage failed: ${failed.message}; stop the server and run 'halcyon queue check'`);
    return { ok: true };
  }

  async list(filter: ListFilter): Promise<QueueEntry[]> {
    const olderThan = filter.olderThanMs === undefined ? undefined : this.d.clock() - filter.olderThanMs;
    return this.d.store.recipients.listMessages({ domain: filter.domain, state: filter.state, olderThan });
  }

  async show(id: string): Promise<MessageDetail> {
    const message = await this.mustGet(id);
    const [recipients, attempts, body] = await Promise.all([this.d.store.recipients.getRecipients(id), this.d.store.recipients.getAttempts(id), this.d.store.messages.getBody(id)]);
    return {
      message,
      headers: headerSummary(body),
      recipients: recipients.map((r) => ({ ...r, history: attempts.filter((a) => a.recipientId === r.id) })),
    };
  }

  async flush(opts: { domain?: string; id?: string; force?: boolean }): Promise<{ flushed: number; reset: string[] }> {
    const now = this.d.clock();
    if (opts.id) await this.mustGet(opts.id);
    const reset: string[] = [];
    if (opts.force) {
      // A destination in backoff is never claimed from: --force clears the backoff of the destinations involved.
      const entries = await this.d.store.recipients.listMessages({ domain: opts.domain, messageId: opts.id });
      // Recipients are queued under their domains; the backoff belongs to the host set a domain maps to.
      const gateOf = (q: string) => this.d.destinationView?.gateOf(q) ?? q;
      const keys = new Set(entries.flatMap((e) => e.recipients.filter((r) => !FINAL_STATES.includes(r.state)).map((r) => gateOf(r.destination))));
      for (const key of keys) {
        const row = await this.d.store.gate.getDestination(key);
        if (row && row.health !== 'ok') {
          await this.d.store.gate.putDestination(clearedDestination(key, now));
          reset.push(key);
        }
      }
    }
    const flushed = await this.d.store.recipients.flush({ domain: opts.domain, messageId: opts.id, now });
    this.d.poke?.();
    return { flushed, reset };
  }

  async hold(target: HoldTarget, held: boolean): Promise<{ ids: string[] }> {
    let ids: string[];
    if (target.id) ids = [target.id];
    else if (target.domain) ids = (await this.d.store.recipients.listMessages({ domain: target.domain })).map((e) => e.message.id);
    else throw new AdminError('bad_request', 'give a message id or a domain');
    const done: string[] = [];
    for (const id of ids) if (await this.d.store.recipients.setHeld(id, held)) done.push(id);
    if (target.id && done.length === 0) throw new AdminError('not_found', `no message ${target.id} in the queue`);
    if (!held) this.d.poke?.();
    return { ids: done };
  }

  async remove(ids: readonly string[]): Promise<{ deleted: number }> {
    return { deleted: await this.d.store.messages.deleteMessages(ids) };
  }

  /**
   * Fails every waiting recipient with 5.0.0; the DSN sweep then sends the
   * report. Recipients in flight are skipped: their delivery may be
   * succeeding right now, and a "failed" DSN for a delivered message is worse
   * than asking again.
   */
  async bounce(id: string): Promise<{ bounced: number; skipped: number }> {
    await this.mustGet(id);
    const rows = await this.d.store.recipients.getRecipients(id);
    const waiting = rows.filter((r) => r.state === 'queued' || r.state === 'deferred');
    const skipped = rows.filter((r) => r.state === 'inflight').length;
    await this.d.store.recipients.recordOutcomes(waiting.map((r) => ({
      recipientId: r.id,
      outcome: { kind: 'failed', reply: { code: 550, enhanced: '5.0.0', text: 'bounced by administrator', command: 'admin' } },
    })), this.d.clock());
    this.d.onBounced?.(id, waiting.map((r) => r.address));
    this.d.poke?.();
    return { bounced: waiting.length, skipped };
  }

  /**
   * One entry per destination: recipients are queued under their domains, so a domain the scheduler maps
   * to an MX host set is folded into that destination (its queued count added, its name listed).
   */
  async destinations(): Promise<DestinationInfo[]> {
    return withTlsReports(await this.listDestinations(), this.d.tlsReports?.() ?? new Map<string, TlsReport>(), this.d.clock());
  }

  private async listDestinations(): Promise<DestinationInfo[]> {
    // Rows, waiting recipients and open connections (slots) of every node on the queue.
    const rows = await this.d.store.gate.listDestinations();
    const view = this.d.destinationView;
    if (!view) return rows;
    const now = this.d.clock();
    const byKey = new Map<string, DestinationInfo>();
    const folded: DestinationInfo[] = [];
    for (const r of rows) {
      const gate = view.gateOf(r.key);
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
    for (const k of view.keys()) ensure(k);
    return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key)).map((r) => {
      const domains = view.domainsOf(r.key);
      return { ...r, ...(domains.length > 0 ? { domains } : {}), politeness: view.limits(r.key) };
    });
  }

  async resetDestination(key: string): Promise<{ flushed: number }> {
    const now = this.d.clock();
    // An MX host set's recipients are queued under its domains: they are flushed with it.
    const domains = this.d.destinationView?.domainsOf(key) ?? [];
    const known = domains.length > 0 || (await this.d.store.gate.listDestinations()).some((r) => r.key === key);
    if (!known) throw new AdminError('not_found', `no destination ${key}`);
    await this.d.store.gate.putDestination(clearedDestination(key, now));
    let flushed = 0;
    for (const q of [key, ...domains]) flushed += await this.d.store.recipients.flush({ destination: q, now });
    this.d.poke?.();
    return { flushed };
  }

  async inject(req: InjectRequest, trace: Partial<Trace> = {}): Promise<{ id: string }> {
    const directory = this.d.directory?.();
    if (!directory) throw new AdminError('unavailable', 'injection needs the server configuration');
    if (typeof req.from !== 'string' || !Array.isArray(req.to) || typeof req.content !== 'string') {
      throw new AdminError('bad_request', 'expected {from: string, to: string[], content: string}');
    }
    if (req.to.length === 0) throw new AdminError('bad_request', 'no recipients');
    const sender = parsePath(`<${req.from}>`, { utf8: true, allowNull: true });
    if (isAddressError(sender)) throw new AdminError('bad_request', `from: ${sender.detail}`);
    const content = toCrlf(req.content.endsWith('\n') ? req.content : `${req.content}\n`);
    if (content.length > this.d.maxMessageSize()) throw new AdminError('too_big', 'message size exceeds fixed maximum message size');
    const recipients: NewRecipient[] = [];
    const seen = new Set<string>();
    for (const to of req.to) {
      const mb = parseMailbox(String(to), true);
      if ('error' in mb) throw new AdminError('bad_request', `to <${String(to)}>: ${mb.detail}`);
      const targets = directory.isLocalDomain(mb.domain)
        ? localTargets(directory, mb, content.length)
        : [{ address: formatMailbox(mb), destination: directory.destinationOf(mb.domain) }];
      for (const t of targets) {
        if (seen.has(t.address.toLowerCase())) continue;
        seen.add(t.address.toLowerCase());
        recipients.push({ address: t.address, destination: t.destination, orcpt: `rfc822;${String(to)}` });
      }
    }
    const fullTrace: Trace = { clientIp: '127.0.0.1', clientHelo: 'localhost', protocol: 'HTTP', listener: 'http', ...trace };
    // The one formatter the SMTP path uses: a quoted local part keeps its quotes on the wire.
    const sender8 = sender.mailbox ? formatMailbox(sender.mailbox) : '';
    const { id } = await this.d.intake.accept({
      origin: 'local', sender: sender8, trace: fullTrace, content, recipients,
      params: { smtputf8: /[^\x00-\x7f]/.test(sender8 + recipients.map((r) => r.address).join('')), body: /[^\x00-\x7f]/.test(req.content) ? '8BITMIME' : undefined },
    });
    this.d.onInjected?.(id, req, fullTrace);
    this.d.poke?.();
    return { id };
  }

  private async mustGet(id: string): Promise<MessageRow> {
    const m = await this.d.store.messages.getMessage(id);
    if (!m) throw new AdminError('not_found', `no message ${id} in the queue`);
    return m;
  }
}

function localTargets(directory: RecipientDirectory, mb: Mailbox, size: number) {
  const r = directory.resolveLocal(mb, size);
  if (!r.ok) throw new AdminError('bad_request', `${r.refusal.code} ${r.refusal.enhanced} ${r.refusal.text}`);
  return r.targets;
}

/**
 * TLS-RPT counts (this node's, per MTA-STS policy domain) on the destination the domain goes to:
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

/** A destination with no backoff and no failures: what "reset" writes. */
export function clearedDestination(key: string, now: number): DestinationState {
  return { key, health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: now };
}

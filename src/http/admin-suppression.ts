/**
 * http/admin-suppression — the operators' side of the suppression list, behind
 * the admin API and `halcyon suppression …` alike: list (with why and when),
 * add, remove, import and export as CSV (queue/suppression's format). An
 * entry an operator adds or imports lasts `suppression.ttl` unless it says
 * otherwise, and carries its reason as its reply text.
 *
 * Does not route HTTP (http/routes does), does not log (the caller's audit
 * hook does), and never decides what a failure suppresses (queue/suppression).
 */
import { durationMs, parseDuration } from '../config/units.js';
import type { Config } from '../config/schema.js';
import type { SuppressionList } from '../queue/suppression.js';
import { fromCsv, suppressionKey, toCsv, type SuppressionEntry } from '../queue/suppression.js';
import { type BounceClass, BOUNCE_CLASS_NAMES, isBounceClass } from '../smtp/bounce-class.js';
import { parseMailbox } from '../smtp/address.js';

/** An entry as the API shows it: the stored entry and whether it is in force now. */
export interface SuppressionView extends SuppressionEntry {
  readonly active: boolean;
}

export interface SuppressRequest {
  readonly address: string;
  /** Default InvalidRecipient. */
  readonly class?: string;
  /** Shown as the entry's reply text (default "added by an administrator"). */
  readonly reason?: string;
  /** "90d" (default: suppression.ttl). */
  readonly ttl?: string;
}

export class SuppressionError extends Error {
  constructor(readonly code: 'bad_request', message: string) {
    super(message);
  }
}

export class SuppressionAdmin {
  constructor(private readonly store: SuppressionList, private readonly config: () => Config, private readonly clock: () => number) {}

  private ttlMs(): number {
    return durationMs(this.config().suppression.ttl);
  }

  async list(f: { q?: string; limit?: number; all?: boolean }): Promise<SuppressionView[]> {
    const now = this.clock();
    const rows = await this.store.listSuppressions({ ...(f.q ? { q: f.q } : {}), ...(f.limit ? { limit: f.limit } : {}), ...(f.all ? {} : { now }) });
    return rows.map((e) => ({ ...e, active: e.until > now }));
  }

  async add(req: SuppressRequest): Promise<SuppressionEntry> {
    const mb = parseMailbox(req.address.trim(), true);
    if ('error' in mb) throw new SuppressionError('bad_request', `not an address: ${req.address} (${mb.detail})`);
    const cls = req.class ?? 'InvalidRecipient';
    if (!isBounceClass(cls)) throw new SuppressionError('bad_request', `class must be one of ${BOUNCE_CLASS_NAMES.join(', ')}`);
    const ttl = req.ttl === undefined ? this.ttlMs() : parseDuration(req.ttl);
    if (ttl === undefined || ttl <= 0) throw new SuppressionError('bad_request', `ttl must be a duration like "30d": ${req.ttl}`);
    const now = this.clock();
    const entry: SuppressionEntry = {
      address: req.address.trim(), class: cls as BounceClass, source: 'admin', since: now, until: now + ttl,
      reply: { code: 550, enhanced: '5.1.1', text: req.reason?.trim() || 'added by an administrator', ours: true },
    };
    await this.store.suppress([entry]);
    return entry;
  }

  async remove(addresses: readonly string[]): Promise<number> {
    return this.store.unsuppress(addresses.map((a) => a.trim()).filter((a) => a !== ''));
  }

  async import(csv: string): Promise<{ imported: number; problems: string[] }> {
    const { entries, problems } = fromCsv(csv, this.clock(), this.ttlMs());
    if (problems.length > 0) return { imported: 0, problems };
    // One entry per address (the last line wins), as the list keeps them.
    const byKey = new Map(entries.map((e) => [suppressionKey(e.address), e]));
    await this.store.suppress([...byKey.values()]);
    return { imported: byKey.size, problems: [] };
  }

  async export(all = false): Promise<string> {
    return toCsv(await this.store.listSuppressions(all ? {} : { now: this.clock() }));
  }
}

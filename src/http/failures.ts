/**
 * http/failures — recent failures by bounce class, for the dashboard's
 * "Recent failures by class" view and GET /api/stats/failures: the deferred,
 * bounced, expired and suppressed outcomes of the last hour counted per class
 * (one-minute slots, like http/throughput), and the latest few of them with
 * their recipient, destination and reply.
 *
 * This node's outcomes since it started (a restart empties it), fed by the
 * same hook as the Prometheus counters so the two never disagree. Time comes
 * from the injected clock. Does not classify (smtp/bounce-rules did) and does
 * not serve HTTP.
 */
import type { LastReply } from '../queue/model.js';
import type { BounceClass } from '../smtp/bounce-class.js';

export type FailureStatus = 'deferred' | 'bounced' | 'expired' | 'suppressed';

export interface FailureExample {
  readonly at: number;
  readonly class: BounceClass;
  readonly status: FailureStatus;
  readonly recipient: string;
  readonly destination: string;
  readonly reply: LastReply;
}

export interface ClassCount {
  readonly class: BounceClass;
  readonly deferred: number;
  readonly bounced: number;
  readonly expired: number;
  readonly suppressed: number;
  readonly total: number;
}

export interface RecentFailures {
  readonly node: string;
  /** The window the counts cover, in minutes (60). */
  readonly minutes: number;
  /** Classes with at least one failure in the window, most first. */
  readonly classes: ClassCount[];
  /** The latest failures, newest first (at most `LATEST`). */
  readonly latest: FailureExample[];
}

const MINUTE = 60_000;
export const LATEST = 20;

interface Slot { at: number; counts: Map<string, number> }

export class FailureRing {
  private readonly slots: Slot[];
  private readonly latest: FailureExample[] = [];

  constructor(private readonly clock: () => number, readonly size = 60) {
    this.slots = Array.from({ length: size }, () => ({ at: -1, counts: new Map() }));
  }

  record(e: Omit<FailureExample, 'at'>): void {
    const now = this.clock();
    const at = Math.floor(now / MINUTE) * MINUTE;
    const slot = this.slots[(at / MINUTE) % this.size]!;
    if (slot.at !== at) Object.assign(slot, { at, counts: new Map() });
    const key = `${e.class}\t${e.status}`;
    slot.counts.set(key, (slot.counts.get(key) ?? 0) + 1);
    this.latest.unshift({ ...e, at: now });
    if (this.latest.length > LATEST) this.latest.length = LATEST;
  }

  snapshot(node: string): RecentFailures {
    const current = Math.floor(this.clock() / MINUTE) * MINUTE;
    const oldest = current - (this.size - 1) * MINUTE;
    const by = new Map<BounceClass, { deferred: number; bounced: number; expired: number; suppressed: number }>();
    for (const slot of this.slots) {
      if (slot.at < oldest || slot.at > current) continue;
      for (const [key, n] of slot.counts) {
        const [cls, status] = key.split('\t') as [BounceClass, FailureStatus];
        const c = by.get(cls) ?? { deferred: 0, bounced: 0, expired: 0, suppressed: 0 };
        c[status] += n;
        by.set(cls, c);
      }
    }
    const classes = [...by].map(([cls, c]) => ({ class: cls, ...c, total: c.deferred + c.bounced + c.expired + c.suppressed }))
      .sort((a, b) => b.total - a.total || a.class.localeCompare(b.class));
    return { node, minutes: this.size, classes, latest: this.latest.filter((e) => e.at >= oldest) };
  }
}

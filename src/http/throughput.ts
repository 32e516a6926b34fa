/**
 * http/throughput — recipients sent, deferred and bounced per minute over
 * the last hour, for the dashboard's chart: a ring of 60 one-minute slots in
 * the running server's memory, bumped by http/metrics where every delivery
 * outcome is counted (so the chart and /metrics never disagree).
 *
 * This node's counts only, since the server started (a restart empties it);
 * a cluster's total is the sum over its nodes. Expired recipients (queue
 * lifetime over, the sender gets a failure DSN) count as bounced. Time comes
 * from the injected clock. Does not serve HTTP.
 */

export type ThroughputStatus = 'sent' | 'deferred' | 'bounced';

export interface ThroughputMinute {
  /** Start of the minute, epoch ms. */
  readonly at: number;
  readonly sent: number;
  readonly deferred: number;
  readonly bounced: number;
}

export interface Throughput {
  readonly node: string;
  /** The last `minutes` minutes (60), oldest first, the current (partial) minute last; minutes without outcomes are zeros. */
  readonly minutes: ThroughputMinute[];
}

const MINUTE = 60_000;

interface Slot { at: number; sent: number; deferred: number; bounced: number }

export class ThroughputRing {
  private readonly slots: Slot[];

  constructor(private readonly clock: () => number, readonly size = 60) {
    this.slots = Array.from({ length: size }, () => ({ at: -1, sent: 0, deferred: 0, bounced: 0 }));
  }

  record(status: ThroughputStatus, n = 1): void {
    const at = Math.floor(this.clock() / MINUTE) * MINUTE;
    const slot = this.slots[(at / MINUTE) % this.size]!;
    // A slot last used an hour (or more) ago starts over.
    if (slot.at !== at) Object.assign(slot, { at, sent: 0, deferred: 0, bounced: 0 });
    slot[status] += n;
  }

  snapshot(node: string): Throughput {
    const current = Math.floor(this.clock() / MINUTE) * MINUTE;
    const minutes: ThroughputMinute[] = [];
    for (let i = this.size - 1; i >= 0; i--) {
      const at = current - i * MINUTE;
      const slot = this.slots[(at / MINUTE) % this.size]!;
      minutes.push(slot.at === at ? { at, sent: slot.sent, deferred: slot.deferred, bounced: slot.bounced } : { at, sent: 0, deferred: 0, bounced: 0 });
    }
    return { node, minutes };
  }
}

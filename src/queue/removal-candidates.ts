/**
 * queue/removal-candidates — which messages a node looks at when it removes
 * finished ones (RecipientQueue.removeCompleted): those whose recipients it
 * changed since its last look, and — a slice per call — every message in the
 * queue, once at start-up and again every RESCAN_MS.
 *
 * The rescan is what lets any node clean up after another: a node that dies
 * after recording its recipients' final outcomes, but before removing their
 * messages, takes its list of what it touched with it. Without the rescan
 * those messages stayed listed as "delivered" until that node started again.
 *
 * Pure bookkeeping, shared by the SQLite and PostgreSQL queues; the queries
 * (the slice, the completeness test, the delete) are theirs.
 */
import type { MessageId } from './model.js';

/** How often every message is looked at again, in slices, by each node. */
export const RESCAN_MS = 10 * 60_000;

export type CandidatePlan =
  /** Look at these (touched since the last call). */
  | { readonly kind: 'touched'; readonly ids: MessageId[] }
  /** Read the next slice of the whole queue: ids after `after`, at most `limit`; then call `scanned`. */
  | { readonly kind: 'scan'; readonly after: MessageId; readonly limit: number };

export class RemovalCandidates {
  private readonly touched = new Set<MessageId>();
  /** Where the scan in progress is (undefined: none), and when the next one starts. */
  private scanFrom: MessageId | undefined = '';
  private nextScanAt = 0;

  /** A recipient of `id` changed: the message may now be complete. */
  touch(id: MessageId): void {
    this.touched.add(id);
  }

  plan(limit: number, now: number): CandidatePlan {
    if (this.scanFrom === undefined && now >= this.nextScanAt) this.scanFrom = '';
    if (this.scanFrom !== undefined) return { kind: 'scan', after: this.scanFrom, limit };
    const ids = [...this.touched].slice(0, limit);
    for (const id of ids) this.touched.delete(id);
    return { kind: 'touched', ids };
  }

  /** The slice a 'scan' plan read (ids in order); the scan ends with a short slice. */
  scanned(ids: readonly MessageId[], limit: number, now: number): void {
    for (const id of ids) this.touched.delete(id);
    if (ids.length < limit) {
      this.scanFrom = undefined;
      this.nextScanAt = now + RESCAN_MS;
    } else {
      this.scanFrom = ids.at(-1)!;
    }
  }
}

/**
 * http/queue-shape — the queue's shape, Postfix's qshape: how many waiting
 * recipients go to each domain (or destination) and how old their messages
 * are, in qshape's age buckets (0-5, 5-10, 10-20 … 640-1280, 1280+ minutes).
 *
 * A pure function of the queue's counts (RecipientQueue.shapeCounts: one
 * aggregate read, the age bucketing done there at the caller's clock): it
 * reads nothing and formats nothing (cli/queue-tools-format renders the
 * table). Only non-final recipients count (queued, in flight, deferred);
 * those of a held message are counted apart (`held`, `heldRows`), as qshape
 * shows the hold queue apart. The age is the message's (its arrival), as in
 * qshape.
 *
 * By sender domain (qshape -s) the rows are messages, not recipients: a
 * message has one sender (RecipientQueue.senderShapeCounts counts the messages
 * that still have a waiting recipient); the null sender's row is
 * MAILER-DAEMON, as qshape names it.
 */
import type { SenderShapeCount, ShapeCount } from '../queue/recipient-queue.js';

export type ShapeBy = 'domain' | 'destination' | 'sender-domain';
export const SHAPE_BY: readonly ShapeBy[] = ['domain', 'destination', 'sender-domain'];

/** The row of messages from the null sender (DSNs) in a shape by sender domain: qshape's name for it. */
export const NULL_SENDER_KEY = 'MAILER-DAEMON';

/** qshape's default buckets: upper bounds in minutes, doubling from 5 to 1280, then everything older (null: no bound). */
export const SHAPE_BUCKETS_MINUTES: readonly (number | null)[] = [5, 10, 20, 40, 80, 160, 320, 640, 1280, null];

export interface ShapeRow {
  readonly key: string;
  readonly total: number;
  /** One count per bucket of `bucketsMinutes`. */
  readonly counts: number[];
}

export interface QueueShape {
  readonly by: ShapeBy;
  /** What the numbers count: recipients (by domain or destination) or messages (by sender domain). */
  readonly counts: 'recipients' | 'messages';
  /** Age bucket upper bounds in minutes; the last is null (no bound: 1280+). */
  readonly bucketsMinutes: (number | null)[];
  /** Every non-final recipient of a message that is not held. */
  readonly total: ShapeRow;
  /** Non-final recipients of held messages, counted apart. */
  readonly held: ShapeRow;
  /** One per key, not held, largest total first (then by key). */
  readonly rows: ShapeRow[];
  /** One per key of the held recipients, largest total first. */
  readonly heldRows: ShapeRow[];
}

/** The bucket bounds in ms, as the queue counts them (RecipientQueue.shapeCounts): everything but the open last one. */
export const SHAPE_BOUNDS_MS: readonly number[] = SHAPE_BUCKETS_MINUTES.filter((b): b is number => b !== null).map((b) => b * 60_000);

class Tally {
  private readonly byKey = new Map<string, number[]>();
  readonly all: number[];
  constructor(private readonly n: number) {
    this.all = new Array<number>(n).fill(0);
  }
  add(key: string, bucket: number, count: number): void {
    let row = this.byKey.get(key);
    if (!row) this.byKey.set(key, (row = new Array<number>(this.n).fill(0)));
    row[bucket]! += count;
    this.all[bucket]! += count;
  }
  rows(): ShapeRow[] {
    return [...this.byKey].map(([key, counts]) => row(key, counts)).sort((a, b) => b.total - a.total || a.key.localeCompare(b.key));
  }
}

const row = (key: string, counts: number[]): ShapeRow => ({ key, total: counts.reduce((s, c) => s + c, 0), counts });

/**
 * The shape from the queue's counts (RecipientQueue.shapeCounts with SHAPE_BOUNDS_MS). `keyOf` names a
 * count's row: its domain by default; by destination the caller passes the destination key (the MX host
 * set the scheduler maps it to, when known).
 */
export function queueShape(
  counts: readonly ShapeCount[],
  by: 'domain' | 'destination' = 'domain',
  keyOf: (c: ShapeCount) => string = by === 'domain' ? (c) => c.domain : (c) => c.destination,
): QueueShape {
  return tally(counts, by, keyOf);
}

/** qshape -s: messages by sender domain (RecipientQueue.senderShapeCounts), the null sender as MAILER-DAEMON. */
export function senderShape(counts: readonly SenderShapeCount[]): QueueShape {
  return tally(counts, 'sender-domain', (c) => c.senderDomain || NULL_SENDER_KEY);
}

function tally<C extends { readonly held: boolean; readonly bucket: number; readonly n: number }>(
  counts: readonly C[], by: ShapeBy, keyOf: (c: C) => string,
): QueueShape {
  const n = SHAPE_BUCKETS_MINUTES.length;
  const waiting = new Tally(n);
  const held = new Tally(n);
  for (const c of counts) (c.held ? held : waiting).add(keyOf(c), Math.min(Math.max(0, c.bucket), n - 1), c.n);
  return {
    by,
    counts: by === 'sender-domain' ? 'messages' : 'recipients',
    bucketsMinutes: [...SHAPE_BUCKETS_MINUTES],
    total: row('TOTAL', waiting.all),
    held: row('HELD', held.all),
    rows: waiting.rows(),
    heldRows: held.rows(),
  };
}

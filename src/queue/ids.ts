/**
 * queue/ids — message ids: 16 characters of Crockford base32, the first 10
 * the millisecond timestamp and the last 6 a random tail, so ids sort by the
 * time they were made and are safe in file names, logs and Received headers.
 *
 * Within one process ids are strictly increasing: when two ids fall in the same
 * millisecond the tail of the previous one is incremented instead of drawn
 * again (as ULID's monotonic mode does), so a burst of enqueues in one event
 * loop turn cannot collide on the primary key and fail a whole group commit.
 * Across processes uniqueness rests on the 30 random bits per millisecond.
 * Threads of one process (the main thread and its SMTP session workers,
 * app/session-workers) each take a `lane`: the tail space is cut into
 * `lanes` equal ranges and each generator draws and counts inside its own,
 * so ids made by two threads of one node never collide.
 *
 * Does not parse ids or derive anything from them except their time.
 */
import { randomInt } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 10;
const TAIL_CHARS = 6;
const TAIL_SPACE = 32 ** TAIL_CHARS; // 2^30

function encode(value: number, width: number): string {
  let out = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[v % 32] + out;
    v = Math.floor(v / 32);
  }
  return out;
}

/** A generator's share of the tail space: range `index` of `lanes` equal ones (default: all of it). */
export interface IdLane {
  readonly index: number;
  readonly lanes: number;
}

let threadLane: IdLane = { index: 0, lanes: 1 };

/** This thread's lane for the generators made from now on (app.ts for the main thread, each session worker for its own). */
export function useIdLane(lane: IdLane): void {
  threadLane = lane;
}

/** Makes ids from a clock; one generator per store keeps its own monotonic state. */
export function createIdGenerator(clock: () => number, lane: IdLane = threadLane): () => string {
  const width = Math.floor(TAIL_SPACE / lane.lanes);
  const base = lane.index * width;
  let lastMs = -1;
  let lastTail = 0;
  return () => {
    let ms = Math.max(0, Math.floor(clock()));
    if (ms <= lastMs) {
      // Same (or an earlier, if the clock stepped back) millisecond: stay monotonic.
      ms = lastMs;
      lastTail += 1;
      if (lastTail >= base + width) {
        ms += 1;
        lastTail = base + randomInt(0, Math.max(1, Math.floor(width / 2)));
      }
    } else {
      // Leave headroom so the increments above rarely overflow into the next ms.
      lastTail = base + randomInt(0, Math.max(1, Math.floor(width / 2)));
    }
    lastMs = ms;
    return encode(ms, TIME_CHARS) + encode(lastTail, TAIL_CHARS);
  };
}

/** The millisecond timestamp an id was made at. */
export function idTime(id: string): number {
  let v = 0;
  for (const ch of id.slice(0, TIME_CHARS)) v = v * 32 + ALPHABET.indexOf(ch);
  return v;
}

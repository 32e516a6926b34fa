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

/** Makes ids from a clock; one generator per store keeps its own monotonic state. */
export function createIdGenerator(clock: () => number): () => string {
  let lastMs = -1;
  let lastTail = 0;
  return () => {
    let ms = Math.max(0, Math.floor(clock()));
    if (ms <= lastMs) {
      // Same (or an earlier, if the clock stepped back) millisecond: stay monotonic.
      ms = lastMs;
      lastTail += 1;
      if (lastTail >= TAIL_SPACE) {
        ms += 1;
        lastTail = randomInt(0, TAIL_SPACE / 2);
      }
    } else {
      // Leave headroom so the increments above rarely overflow into the next ms.
      lastTail = randomInt(0, TAIL_SPACE / 2);
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

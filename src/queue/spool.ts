/**
 * queue/spool — where the SQLite queue keeps large message bodies: append-only
 * segment files under `<dataDir>/queue/spool/`, written once, read back by
 * (segment, offset, length), and removed whole when no message refers to them
 * any more (docs/decisions/0005-large-bodies-in-spool-segments.md).
 *
 * What it does:
 * - `append(bodies)` writes every body of one enqueue batch to the current
 *   segment with one write and one fdatasync, and returns where each landed.
 *   The caller commits the rows that point there only after this returned, so
 *   a committed row always points at durable bytes; bytes whose rows never
 *   committed (a crash, a failed commit) are garbage nobody refers to.
 * - `read(location)` returns one body.
 * - `collect(referenced)` unlinks segments that no row refers to and that no
 *   writer can still be appending to (see `STALE_MS`).
 *
 * What it does not: decide which bodies go here (sqlite/messages does, by
 * size), know about rows or transactions, or compact a segment that is still
 * partly referenced (a long-deferred message keeps its segment alive; segments
 * are small so that costs little).
 *
 * Several processes may use one data_dir (the server's queue thread, CLI
 * commands on a stopped or running server, tests): each writer appends only
 * to a segment it created itself, named with a time, its pid and a random
 * tail, and rotates it after `SEGMENT_MAX_BYTES` or `SEGMENT_MAX_AGE_MS`.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync, fdatasyncSync, fstatSync, mkdirSync, openSync, readSync, readdirSync, statSync, unlinkSync, writevSync,
} from 'node:fs';
import { join } from 'node:path';
import { HalcyonError } from '../errors.js';

/** A segment is closed for appends past this size… */
export const SEGMENT_MAX_BYTES = 16 * 1024 * 1024;
/** …or this age, so that any segment older than STALE_MS has no writer left. */
export const SEGMENT_MAX_AGE_MS = 5 * 60_000;
/** An unreferenced segment last written this long ago is removed (three times the rotation age). */
export const STALE_MS = 3 * SEGMENT_MAX_AGE_MS;

export interface SpoolLocation {
  readonly segment: string;
  readonly offset: number;
  readonly length: number;
}

const SEGMENT_NAME = /^seg-[0-9a-z]+-\d+-[0-9a-f]+\.dat$/;

interface Current {
  readonly name: string;
  readonly fd: number;
  readonly openedAt: number;
  size: number;
}

export class BodySpool {
  readonly dir: string;
  private current: Current | undefined;

  constructor(queueDir: string, private readonly clock: () => number = Date.now) {
    this.dir = join(queueDir, 'spool');
  }

  /** Writes the bodies in order, durably (one write, one fdatasync), and returns where each one is. */
  append(bodies: readonly Buffer[]): SpoolLocation[] {
    if (bodies.length === 0) return [];
    const seg = this.segmentFor();
    const out: SpoolLocation[] = [];
    let offset = seg.size;
    for (const b of bodies) {
      out.push({ segment: seg.name, offset, length: b.length });
      offset += b.length;
    }
    try {
      let written = 0;
      const total = offset - seg.size;
      let pending: Buffer[] = [...bodies];
      // writev may write less than asked (a signal, a nearly full disk): go on from where it stopped.
      while (written < total) {
        const n = writevSync(seg.fd, pending, seg.size + written);
        if (n <= 0) throw new Error('short write');
        written += n;
        pending = remainder(pending, n);
      }
      fdatasyncSync(seg.fd);
    } catch (err) {
      // The segment's tail is now unknown: never append to it again.
      this.closeCurrent();
      throw new HalcyonError('HAL_ERR_QUEUE_WRITE', `spool write to ${seg.name}: ${String(err)}`, { cause: err });
    }
    seg.size = offset;
    return out;
  }

  read(loc: SpoolLocation): Buffer {
    const buf = Buffer.allocUnsafe(loc.length);
    let fd: number;
    try {
      fd = openSync(join(this.dir, loc.segment), 'r');
    } catch (err) {
      throw new HalcyonError('HAL_ERR_QUEUE_NOT_FOUND', `body segment ${loc.segment} is missing: ${String(err)}`, { cause: err });
    }
    try {
      let got = 0;
      while (got < loc.length) {
        const n = readSync(fd, buf, got, loc.length - got, loc.offset + got);
        if (n === 0) throw new HalcyonError('HAL_ERR_QUEUE_NOT_FOUND', `body segment ${loc.segment} ends before ${loc.offset + loc.length}`);
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    return buf;
  }

  /** Segment files present, by name. */
  segments(): string[] {
    try {
      return readdirSync(this.dir).filter((n) => SEGMENT_NAME.test(n));
    } catch {
      return [];
    }
  }

  /**
   * Removes every segment that is not referenced, is not this spool's current one and was last
   * written more than STALE_MS ago (so no other process can still be about to commit rows into it).
   * Returns how many were removed.
   */
  collect(referenced: ReadonlySet<string>): number {
    let removed = 0;
    const now = this.clock();
    for (const name of this.segments()) {
      if (referenced.has(name) || name === this.current?.name) continue;
      const path = join(this.dir, name);
      try {
        if (now - statSync(path).mtimeMs < STALE_MS) continue;
        unlinkSync(path);
        removed++;
      } catch { /* gone meanwhile, or not ours to remove: try again next time */ }
    }
    return removed;
  }

  close(): void {
    this.closeCurrent();
  }

  private segmentFor(): Current {
    const now = this.clock();
    const c = this.current;
    if (c && c.size < SEGMENT_MAX_BYTES && now - c.openedAt < SEGMENT_MAX_AGE_MS) return c;
    this.closeCurrent();
    mkdirSync(this.dir, { recursive: true });
    const name = `seg-${now.toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}.dat`;
    const fd = openSync(join(this.dir, name), 'wx');
    // The new name must survive a crash too: sync the directory entry once, at creation.
    const dirFd = openSync(this.dir, 'r');
    try { fdatasyncSync(dirFd); } finally { closeSync(dirFd); }
    this.current = { name, fd, openedAt: now, size: fstatSync(fd).size };
    return this.current;
  }

  private closeCurrent(): void {
    if (this.current) {
      try { closeSync(this.current.fd); } catch { /* already closed */ }
      this.current = undefined;
    }
  }
}

/** The buffers left after the first n bytes of `bufs` were written. */
function remainder(bufs: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.length) { skip -= b.length; continue; }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

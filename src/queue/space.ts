/**
 * queue/space — free disk space for the queue, and a reserve that lets a
 * server started on a full disk still work.
 *
 * `queue/reserve` is a file of RESERVE_BYTES written while there is room. On a
 * start with less free space than new mail needs, it is deleted first: SQLite
 * then has room to recover its WAL, claim recipients and record deliveries
 * (which is how a queue frees space), instead of the start failing with
 * "database or disk is full". It is written again once there is room for it
 * and for new mail.
 *
 * New mail (MAIL FROM) is answered 452 4.3.1 while free space is below what
 * a message may need: 1.5 × its declared SIZE (or max_message_size), plus the
 * reserve when the reserve is missing — as Postfix's smtpd refuses mail below
 * 1.5 × message_size_limit of free queue space. Free space is read with
 * statfs at most once a second. Does not touch the database.
 */
import { existsSync, mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RESERVE_BYTES = 2 * 1024 * 1024;
const CACHE_MS = 1_000;

export class QueueSpace {
  private readonly dir: string;
  private readonly reserveFile: string;
  private cachedAt = -Infinity;
  private cachedFree = Infinity;

  constructor(dataDir: string, private readonly maxMessageSize: () => number, private readonly clock: () => number = Date.now) {
    this.dir = join(dataDir, 'queue');
    this.reserveFile = join(this.dir, 'reserve');
  }

  /** Free bytes for an unprivileged writer on the queue's filesystem (Infinity if statfs fails). */
  free(): number {
    const now = this.clock();
    if (now - this.cachedAt < CACHE_MS) return this.cachedFree;
    this.cachedAt = now;
    try {
      const s = statfsSync(this.dir);
      this.cachedFree = s.bavail * s.bsize;
    } catch {
      this.cachedFree = Infinity;
    }
    return this.cachedFree;
  }

  get hasReserve(): boolean {
    return existsSync(this.reserveFile);
  }

  /** Before the queue opens: give the reserve up when new mail could not fit, so the queue can work; else make sure it exists. */
  atStart(): { released: boolean } {
    mkdirSync(this.dir, { recursive: true });
    if (this.free() < this.need(undefined, false) && this.hasReserve) {
      rmSync(this.reserveFile, { force: true });
      this.cachedAt = -Infinity;
      return { released: true };
    }
    this.refill();
    return { released: false };
  }

  private need(size: number | undefined, withReserve: boolean): number {
    return 1.5 * (size ?? this.maxMessageSize()) + (withReserve ? RESERVE_BYTES : 0);
  }

  /** Whether a new message of `size` (SIZE=, when declared) may be accepted now. */
  acceptsMail(size?: number): boolean {
    const free = this.free();
    if (!this.hasReserve) {
      if (free < this.need(size, true)) return false;
      this.refill();
      return true;
    }
    return free >= this.need(size, false);
  }

  private refill(): void {
    if (this.hasReserve || this.free() < RESERVE_BYTES + this.need(undefined, false)) return;
    try {
      writeFileSync(this.reserveFile, Buffer.alloc(RESERVE_BYTES));
    } catch {
      rmSync(this.reserveFile, { force: true });
    }
    this.cachedAt = -Infinity;
  }
}

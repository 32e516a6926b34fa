/**
 * smtp/bdat — reads the content of a CHUNKING transaction (RFC 3030): the
 * exact octet counts of `BDAT n [LAST]` chunks taken from a byte stream, in
 * order, into one message.
 *
 * Chunks are not dot-stuffed; the content is still normalized as DATA's is
 * (every line ends in CRLF, bare CR/LF, NULs, long lines and size reported
 * through the same `DataFlags`, via smtp/data's scanChunk), so a message
 * does not differ by the command that carried it. Past the size cap it counts
 * octets but keeps nothing more. Does not parse commands or decide replies;
 * the session does.
 */
import { scanChunk, type DataFlags } from './data.js';

export type BdatStep =
  /** The chunk is not complete yet: more of the stream is needed. */
  | undefined
  /** A chunk other than the last is complete: `rest` is what follows it in the stream. */
  | { readonly last: false; readonly size: number; readonly rest: Buffer }
  /** The LAST chunk is complete: the whole content. */
  | { readonly last: true; readonly size: number; readonly rest: Buffer; readonly content: Buffer; readonly flags: DataFlags };

export class BdatReader {
  readonly flags: DataFlags = { bareLf: false, bareCr: false, nul: false, longLine: false, tooBig: false };
  private parts: Buffer[] = [];
  private size = 0;
  private endsInCr = false;
  private remaining = 0;
  private last = false;

  constructor(private readonly maxSize: number) {}

  /** The next `BDAT size [LAST]` command: `push` then takes `size` octets. */
  chunk(size: number, last: boolean): void {
    this.remaining = size;
    this.last = last;
  }

  push(data: Buffer): BdatStep {
    const take = data.subarray(0, this.remaining);
    this.remaining -= take.length;
    if (!this.flags.tooBig) {
      const scanned = scanChunk(take, this.flags, this.endsInCr);
      this.endsInCr = scanned.endsInCr;
      this.size += scanned.normalized.length;
      if (this.size > this.maxSize) {
        this.flags.tooBig = true;
        this.parts = [];
      } else this.parts.push(scanned.normalized);
    }
    if (this.remaining > 0) return undefined;
    const rest = data.subarray(take.length);
    if (!this.last) return { last: false, size: this.size, rest };
    if (this.endsInCr) {
      // A CR at the very end had no LF after it: a bare CR, made a line end like any other.
      this.flags.bareCr = true;
      this.parts.push(Buffer.from('\r\n'));
    }
    return { last: true, size: this.size, rest, content: Buffer.concat(this.parts), flags: this.flags };
  }
}

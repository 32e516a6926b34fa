/**
 * smtp/data — reads DATA content (RFC 5321 §4.1.1.4, §4.5.2) from a byte
 * stream: finds the end, removes dot-stuffing, and makes every line end in
 * CRLF.
 *
 * Only <CRLF>.<CRLF> ends the content (the content begins at a line start).
 * A bare CR or bare LF anywhere is never a line end for that purpose: it is
 * rewritten to CRLF and reported, so the session can reject it or keep the
 * normalized form, and Halcyon never stores or relays a bare CR or LF (the
 * SMTP smuggling defence). A dot is unstuffed only at the start of a line that
 * followed a real CRLF.
 *
 * Also reports NULs, lines over 998 octets and content beyond the size cap
 * (past the cap it keeps scanning for the end but stores nothing more). Does
 * not parse headers or decide replies.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const enum St { Text, Cr, LineStart, Dot, DotCr }

export interface DataFlags {
  bareLf: boolean;
  bareCr: boolean;
  nul: boolean;
  longLine: boolean;
  tooBig: boolean;
}

export interface DataResult {
  /** The content, CRLF-normalized and unstuffed; empty when tooBig. */
  readonly content: Buffer;
  /** Content size in octets (counted even past the cap). */
  readonly size: number;
  readonly flags: Readonly<DataFlags>;
}

export class DataReader {
  private st: St = St.LineStart;
  private parts: Buffer[] = [];
  private stored = 0;
  private total = 0;
  private lineLen = 0;
  readonly flags: DataFlags = { bareLf: false, bareCr: false, nul: false, longLine: false, tooBig: false };

  constructor(private readonly maxSize: number, private readonly maxLine = 998) {}

  /**
   * Consumes a chunk. Returns undefined while the end was not seen, else the
   * result and the bytes after the end (pipelined commands).
   *
   * Copy-free until the end: the output is kept as views of the chunks (which
   * the caller must not reuse; socket reads never are), cut only where a
   * stuffed dot is dropped or a CR/LF inserted, and joined once at the end. A
   * clean 100 KB body is thus copied once, not three times.
   */
  push(chunk: Buffer): { result: DataResult; rest: Buffer } | undefined {
    let st = this.st;
    let lineLen = this.lineLen;
    // chunk[from, i) is output verbatim, taken when the run is cut (or the chunk ends).
    let from = 0;
    const cut = (end: number): void => {
      if (end > from) this.take(chunk.subarray(from, end));
    };
    // Next CR and LF at or after i, found by the native memchr behind indexOf, so ordinary text is
    // skipped in runs rather than byte by byte (a 100 KB body has a few thousand line ends, not 100,000).
    let nextCr = -1;
    let nextLf = -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      // A state may hand the byte on to Text (reprocess) by setting st and falling through the loop body again.
      for (;;) {
        if (st === St.Text) {
          // A CR is output as is whatever follows it: an LF (verbatim) or anything else (an LF is inserted).
          if (b === CR) st = St.Cr;
          else if (b === LF) {
            this.flags.bareLf = true;
            cut(i);
            this.take(CR_ONLY);
            from = i;
            lineLen = 0;
          } else {
            if (nextCr < i) nextCr = chunk.indexOf(CR, i) >>> 0;
            if (nextLf < i) nextLf = chunk.indexOf(LF, i) >>> 0;
            const end = Math.min(nextCr, nextLf, chunk.length);
            if (!this.flags.nul && chunk.subarray(i, end).indexOf(0) >= 0) this.flags.nul = true;
            lineLen += end - i;
            if (lineLen > this.maxLine) this.flags.longLine = true;
            i = end - 1;
          }
          break;
        }
        if (st === St.Cr) {
          if (b === LF) {
            lineLen = 0;
            st = St.LineStart;
            break;
          }
          this.flags.bareCr = true;
          cut(i);
          this.take(LF_ONLY);
          from = i;
          lineLen = 0;
          st = St.Text;
          continue;
        }
        if (st === St.LineStart) {
          if (b === DOT) {
            // Held back: a stuffed dot is dropped, and ".<CRLF>" ends the content.
            cut(i);
            from = i + 1;
            st = St.Dot;
            break;
          }
          st = St.Text;
          continue;
        }
        if (st === St.Dot) {
          if (b === CR) {
            from = i + 1;
            st = St.DotCr;
            break;
          }
          // A stuffed dot: dropped (from is already past it). What follows is ordinary text.
          st = St.Text;
          continue;
        }
        // St.DotCr: "<CRLF>.<CR>" — only an LF now ends the content.
        if (b === LF) {
          this.st = St.LineStart;
          return {
            result: { content: this.flags.tooBig ? Buffer.alloc(0) : Buffer.concat(this.parts, this.stored), size: this.total, flags: { ...this.flags } },
            rest: chunk.subarray(i + 1),
          };
        }
        // The dot was stuffed and its CR bare: the dot goes, the CR becomes CRLF.
        this.flags.bareCr = true;
        this.take(CRLF);
        from = i;
        lineLen = 0;
        st = St.Text;
        continue;
      }
    }
    // A dot or "." CR at the chunk's end is still held back (from is past it).
    cut(chunk.length);
    this.st = st;
    this.lineLen = lineLen;
    return undefined;
  }

  private take(buf: Buffer): void {
    if (buf.length === 0) return;
    this.total += buf.length;
    if (this.total > this.maxSize) {
      this.flags.tooBig = true;
      this.parts = [];
      this.stored = 0;
      return;
    }
    if (this.flags.tooBig) return;
    this.parts.push(buf);
    this.stored += buf.length;
  }
}

const CR_ONLY = Buffer.from([CR]);
const LF_ONLY = Buffer.from([LF]);
const CRLF = Buffer.from([CR, LF]);

/**
 * Counts octets and checks a BDAT chunk's content for bare CR/LF and NUL
 * without dot handling (RFC 3030 chunks are not dot-stuffed).
 */
export function scanChunk(chunk: Buffer, flags: DataFlags, prevCr: boolean): { normalized: Buffer; endsInCr: boolean } {
  const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
  let o = 0;
  let cr = prevCr;
  if (prevCr) out[o++] = CR;
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i]!;
    if (cr && b !== LF) {
      flags.bareCr = true;
      out[o++] = LF;
    }
    if (b === LF && !cr) {
      flags.bareLf = true;
      out[o++] = CR;
    }
    if (b === 0) flags.nul = true;
    out[o++] = b;
    cr = b === CR;
  }
  // A CR at the very end stays pending: the next chunk (or LAST) decides.
  if (cr) o--;
  return { normalized: Buffer.from(out.subarray(0, o)), endsInCr: cr };
}

/**
 * smtp/lines — splits the command stream into lines without ever buffering
 * more than the RFC 5321 §4.5.3.1.4 limit (512 octets with CRLF).
 *
 * A line that grows past the limit is reported once as `overlong` and the
 * rest of it is discarded up to the next LF. A bare LF ends a command line
 * too (commands are not message content; smuggling concerns only DATA).
 * Knows nothing about DATA: the session takes the unread bytes (`takeRest`)
 * when it switches to reading content.
 */

export type LineEvent = { readonly line: string } | { readonly overlong: true };

export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private discarding = false;

  constructor(private readonly maxLine = 512) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** The next complete line, an overlong marker, or undefined when more bytes are needed. */
  next(): LineEvent | undefined {
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) {
        if (this.buf.length > this.maxLine) {
          this.buf = Buffer.alloc(0);
          if (!this.discarding) {
            this.discarding = true;
            return { overlong: true };
          }
        }
        return undefined;
      }
      const raw = this.buf.subarray(0, nl);
      this.buf = this.buf.subarray(nl + 1);
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      if (raw.length + 1 > this.maxLine) return { overlong: true };
      const end = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.length - 1 : raw.length;
      return { line: raw.toString('utf8', 0, end) };
    }
  }

  /** Bytes received but not yet returned as lines. */
  get pending(): number {
    return this.buf.length;
  }

  /** Hands over (and forgets) the unread bytes. */
  takeRest(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    this.discarding = false;
    return rest;
  }
}

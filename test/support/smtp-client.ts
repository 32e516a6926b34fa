/**
 * test/support/smtp-client — a raw SMTP client for protocol tests: writes
 * exactly the bytes a test gives (pipelined, malformed, smuggled) and reads
 * whole replies (multi-line joined) in the order they arrive.
 *
 * Deliberately dumb: it does not follow the protocol, retry, dot-stuff or
 * check anything; a test decides what to send and asserts what comes back.
 * Every read has a timeout so a silent server fails the test instead of
 * hanging it. STARTTLS upgrading is offered because a test must be able to
 * send plaintext after the STARTTLS command on purpose.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ReplyParser, type Reply } from '../../src/smtp/reply.js';

export type { Reply };

export const DEFAULT_READ_TIMEOUT_MS = 5_000;

export class RawSmtpClient {
  private sock: net.Socket;
  private readonly parser = new ReplyParser();
  private readonly replies: Reply[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;
  /** Every reply received, in order (for "every reply has an enhanced code" checks). */
  readonly log: Reply[] = [];

  private constructor(sock: net.Socket) {
    this.sock = sock;
    this.listen(sock);
  }

  /** Connects; does not read the greeting (use `read()`), so pre-greeting tests can talk first. */
  static connect(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<RawSmtpClient> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress });
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(new RawSmtpClient(sock));
      });
    });
  }

  private listen(sock: net.Socket): void {
    sock.on('data', (d: Buffer) => {
      for (const r of this.parser.push(d)) {
        this.replies.push(r);
        this.log.push(r);
      }
      this.wake();
    });
    sock.on('error', () => { /* 'close' follows */ });
    sock.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Writes raw bytes as given. */
  write(data: string | Buffer): void {
    this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next reply, or undefined when the server closed without one. Throws on timeout. */
  async readOrClose(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Reply | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replies.shift();
      if (r) return r;
      if (this.ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  /** The next reply; throws if the connection closed first. */
  async read(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Reply> {
    const r = await this.readOrClose(timeoutMs);
    if (!r) throw new Error('connection closed while waiting for a reply');
    return r;
  }

  /** Sends one command line (CRLF added) and reads its reply. */
  async cmd(line: string, timeoutMs?: number): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read(timeoutMs);
  }

  /** Resolves when the server has closed the connection (or throws after timeoutMs). */
  async waitClosed(timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); resolve(); };
      });
    }
  }

  /** Replies received but not read yet. */
  get unread(): readonly Reply[] {
    return this.replies;
  }

  /**
   * Upgrades to TLS (after the caller got 220 to STARTTLS). Bytes the server
   * sent in plaintext after that reply are dropped, as a client must.
   */
  async upgradeTls(): Promise<tls.TLSSocket> {
    const plain = this.sock;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    this.parser.reset();
    this.replies.length = 0;
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false, servername: undefined });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('TLS handshake timed out')), DEFAULT_READ_TIMEOUT_MS);
      secure.once('secureConnect', () => { clearTimeout(t); resolve(); });
      secure.once('error', (e) => { clearTimeout(t); reject(e); });
    });
    this.sock = secure;
    this.listen(secure);
    return secure;
  }

  /** A plain EHLO → MAIL → RCPT… → DATA → content → "." with a reply check per step; returns the final reply. */
  async send(opts: { from: string; to: readonly string[]; content: string; ehlo?: boolean }): Promise<Reply> {
    if (opts.ehlo !== false) await this.expect('EHLO client.test', 250);
    await this.expect(`MAIL FROM:<${opts.from}>`, 250);
    for (const rcpt of opts.to) await this.expect(`RCPT TO:<${rcpt}>`, 250);
    await this.expect('DATA', 354);
    this.write(opts.content.replace(/^\./gm, '..'));
    return this.cmd('.');
  }

  /** Sends a command and throws (with the reply) unless the code matches. */
  async expect(line: string, code: number): Promise<Reply> {
    const r = await this.cmd(line);
    if (r.code !== code) throw new Error(`${line} → ${r.code} ${r.enhanced ?? ''} ${r.lines.join(' / ')} (expected ${code})`);
    return r;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** "250 2.0.0 Ok: queued as ID" → ID, else undefined. */
export function queuedId(r: Reply): string | undefined {
  if (r.code !== 250) return undefined;
  return /queued as (\S+)/.exec(r.lines.join(' '))?.[1];
}

/**
 * The reply to one RCPT TO, as a client of the listener at `port` hears it (EHLO, MAIL FROM, RCPT TO;
 * the transaction then abandoned with QUIT).
 */
export async function rcptReply(port: number, to: string, from = 'sender@client.test'): Promise<{ code: number; enhanced?: string; text: string }> {
  const c = await RawSmtpClient.connect(port);
  try {
    await c.read();
    await c.expect('EHLO client.test', 250);
    await c.expect(`MAIL FROM:<${from}>`, 250);
    const r = await c.cmd(`RCPT TO:<${to}>`);
    await c.cmd('QUIT').catch(() => undefined);
    return { code: r.code, ...(r.enhanced ? { enhanced: r.enhanced } : {}), text: r.lines.join(' ') };
  } finally {
    c.close();
  }
}

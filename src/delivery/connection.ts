/**
 * delivery/connection — one outbound SMTP or LMTP client connection over a
 * real socket (TCP, or a Unix socket for LMTP): connect (with timeout),
 * greeting, EHLO (HELO when EHLO gets a 5xx; LHLO for LMTP, RFC 2033 §4.1,
 * which has no fallback),
 * the capabilities the server offers, STARTTLS by policy, AUTH PLAIN/LOGIN,
 * then plain command/reply exchange for `send.ts`, RSET and QUIT.
 *
 * TLS policies: 'none' never upgrades; 'opportunistic' upgrades when
 * STARTTLS is offered (certificate not checked) and stays in plaintext when
 * it is not offered or is refused with a reply; 'required' must upgrade
 * (certificate not checked); 'verify' must upgrade with a certificate valid
 * for the host name; with `dane` records (delivery/dane) the upgrade is
 * required and the certificate chain must match them (delivery/dane-match),
 * else the host fails with 4.7.5 and nothing is sent. After the handshake the pre-TLS capabilities are
 * forgotten and any bytes the server sent after its 220 to STARTTLS are
 * discarded (the STARTTLS response-injection defence, CVE-2011-0411 kin),
 * then EHLO is sent again.
 *
 * AUTH credentials are sent only over TLS or to a loopback address: a
 * smarthost that offers no STARTTLS elsewhere fails the host (4.7.10) rather
 * than leak the password.
 *
 * A remote's replies are bounded (smtp/reply REPLY_LIMITS per reply, 1 MiB
 * of replies not yet read): beyond that the connection is closed as a
 * protocol violation, which the caller treats as a connection-level failure
 * (the destination backs off), so a hostile remote costs bounded memory.
 *
 * What it does not do: decide anything about recipients (send.ts and the
 * reducer do), pick hosts or pool connections (smtp-transport.ts).
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { TlsPolicy } from '../config/schema.js';
import type { LastReply } from '../queue/model.js';
import { ReplyParser, replyText, type Reply } from '../smtp/reply.js';
import { verifyDane, type Tlsa } from './dane-match.js';
import type { NextHop } from './resolve.js';

/** Outbound timeouts in milliseconds (config delivery.timeouts, converted). */
export interface ClientTimeouts {
  readonly connect: number;
  readonly greeting: number;
  readonly command: number;
  readonly dataInit: number;
  readonly dataBlock: number;
  readonly dataDone: number;
}

export interface Capabilities {
  readonly esmtp: boolean;
  readonly pipelining: boolean;
  /** SIZE limit in bytes; 0 = offered without a limit; undefined = not offered. */
  readonly size?: number;
  readonly eightBitMime: boolean;
  readonly smtputf8: boolean;
  readonly dsn: boolean;
  readonly starttls: boolean;
  readonly chunking: boolean;
  readonly auth: readonly string[];
}

export const NO_CAPABILITIES: Capabilities = {
  esmtp: false, pipelining: false, eightBitMime: false, smtputf8: false, dsn: false, starttls: false, chunking: false, auth: [],
};

/** The EHLO reply's lines (after the first, which is the server's name) as capabilities. */
export function parseEhlo(lines: readonly string[]): Capabilities {
  let caps: Capabilities = { ...NO_CAPABILITIES, esmtp: true };
  for (const line of lines.slice(1)) {
    // "AUTH=PLAIN LOGIN" is the pre-RFC 4954 spelling some servers still send.
    const [rawKey = '', ...args] = line.trim().split(/[\s=]+/);
    switch (rawKey.toUpperCase()) {
      case 'PIPELINING': caps = { ...caps, pipelining: true }; break;
      case 'SIZE': {
        const n = Number(args[0] ?? '0');
        caps = { ...caps, size: Number.isSafeInteger(n) && n >= 0 ? n : 0 };
        break;
      }
      case '8BITMIME': caps = { ...caps, eightBitMime: true }; break;
      case 'SMTPUTF8': caps = { ...caps, smtputf8: true }; break;
      case 'DSN': caps = { ...caps, dsn: true }; break;
      case 'STARTTLS': caps = { ...caps, starttls: true }; break;
      case 'CHUNKING': caps = { ...caps, chunking: true }; break;
      case 'AUTH': caps = { ...caps, auth: [...new Set([...caps.auth, ...args.map((a) => a.toUpperCase())])] }; break;
      default: break;
    }
  }
  return caps;
}

/** Why no reply came: our timer ran out, or the peer closed/reset the connection. */
export interface Lost {
  readonly lost: 'no-answer' | 'dropped';
  readonly detail: string;
}
export type ReadResult = { readonly reply: Reply } | Lost;
export const isLost = (r: ReadResult | Lost | undefined): r is Lost => r !== undefined && 'lost' in r;

/**
 * Our own last reply for a failure without a server reply: 451 4.4.1 for no
 * answer (timeout, refused), 4.4.2 for a connection dropped under us.
 */
export function lostReply(l: Lost, command: string, host?: string): LastReply {
  return { code: 451, enhanced: l.lost === 'no-answer' ? '4.4.1' : '4.4.2', text: l.detail, command, ...(host ? { host } : {}), ours: true };
}

export function toLastReply(r: Reply, command: string, host: string): LastReply {
  return { code: r.code, ...(r.enhanced ? { enhanced: r.enhanced } : {}), text: replyText(r), host, command };
}

/** "mx.example.test[127.0.0.1]:25", or "unix:/run/dovecot/lmtp" for a Unix socket. */
export function hopLabel(hop: NextHop): string {
  return hop.socket !== undefined ? `unix:${hop.socket}` : `${hop.host}[${hop.address}]:${hop.port}`;
}

/** Replies received but not yet read (pipelined RCPT replies arrive in a burst): more is a broken peer. */
const MAX_QUEUED_REPLY_BYTES = 1024 * 1024;

/**
 * Bytes in, replies out, for one socket at a time. Replies are queued in the
 * order they arrive and handed to `read` strictly in that order.
 */
class ReplyChannel {
  private parser = new ReplyParser();
  private queue: Reply[] = [];
  private queuedBytes = 0;
  private waiter: ((r: ReadResult) => void) | undefined;
  private ended: Lost | undefined;

  constructor(private sock: net.Socket) {
    this.attach(sock);
  }

  get socket(): net.Socket {
    return this.sock;
  }

  get closed(): Lost | undefined {
    return this.ended;
  }

  /** Replies (or partial lines) that arrived with no command waiting for them. */
  get unsolicited(): number {
    return this.queue.length + this.parser.buffered;
  }

  private readonly onData = (chunk: Buffer): void => {
    for (const r of this.parser.push(chunk)) {
      this.queue.push(r);
      this.queuedBytes += r.lines.reduce((n, l) => n + l.length + 6, 0);
    }
    // A reply over its limits, or replies nobody asked for piling up: the peer is broken (a connection-level failure).
    const broken = this.parser.broken ?? (this.queuedBytes > MAX_QUEUED_REPLY_BYTES ? `more than ${MAX_QUEUED_REPLY_BYTES} octets of replies not asked for` : undefined);
    if (broken) {
      this.queue = [];
      this.end({ lost: 'dropped', detail: `protocol violation by the remote host: ${broken}` });
      this.sock.destroy();
      return;
    }
    this.flush();
  };
  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.end({ lost: 'dropped', detail: `connection lost (${err.code ?? err.message})` });
  };
  private readonly onClose = (): void => {
    this.end({ lost: 'dropped', detail: 'connection closed by the remote host' });
  };

  private attach(sock: net.Socket): void {
    this.sock = sock;
    sock.on('data', this.onData);
    sock.on('error', this.onError);
    sock.on('close', this.onClose);
  }

  private end(why: Lost): void {
    this.ended ??= why;
    this.flush();
  }

  private flush(): void {
    const w = this.waiter;
    if (!w) return;
    const r = this.queue.shift();
    if (r) this.queuedBytes -= r.lines.reduce((n, l) => n + l.length + 6, 0);
    if (r) w({ reply: r });
    else if (this.ended) w(this.ended);
  }

  read(timeoutMs: number, what: string): Promise<ReadResult> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ lost: 'no-answer', detail: `timeout after ${timeoutMs}ms waiting for the reply to ${what}` }), timeoutMs);
      const done = (r: ReadResult): void => {
        clearTimeout(timer);
        this.waiter = undefined;
        resolve(r);
      };
      this.waiter = done;
      this.flush();
    });
  }

  /**
   * Resolves once the data is handed to the kernel; a Lost when the socket failed or stayed blocked past timeoutMs.
   * Several buffers (dotStuffParts) go out as one gathered write, without being joined first.
   */
  write(data: string | Buffer | readonly Buffer[], timeoutMs: number): Promise<Lost | undefined> {
    if (this.ended) return Promise.resolve(this.ended);
    const parts = typeof data === 'string' || Buffer.isBuffer(data) ? [data] : data;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ lost: 'no-answer', detail: `timeout after ${timeoutMs}ms writing to the remote host` }), timeoutMs);
      const done = (err?: Error | null): void => {
        clearTimeout(timer);
        resolve(err ? { lost: 'dropped', detail: `connection lost while writing (${(err as NodeJS.ErrnoException).code ?? err.message})` } : undefined);
      };
      if (parts.length === 1) return void this.sock.write(parts[0]!, done);
      this.sock.cork();
      parts.forEach((p, i) => (i === parts.length - 1 ? this.sock.write(p, done) : this.sock.write(p)));
      this.sock.uncork();
    });
  }

  /**
   * Stops reading the plaintext socket before the TLS handshake, dropping
   * whatever the server sent after its 220 (nothing sent in the clear may
   * count once the channel is encrypted). Returns how much was dropped.
   */
  detachForTls(): number {
    const dropped = this.unsolicited;
    this.sock.off('data', this.onData);
    this.sock.off('error', this.onError);
    this.sock.off('close', this.onClose);
    this.queue = [];
    this.parser.reset();
    // This channel is done: writes and reads now fail at once instead of touching the handed-over socket.
    this.ended = { lost: 'dropped', detail: 'plaintext channel handed over to TLS' };
    return dropped;
  }

  attachTls(sock: tls.TLSSocket): void {
    this.attach(sock);
  }
}

export interface OpenOptions {
  readonly heloName: string;
  /** The local address the connection binds to (a source address of [egress]); unset → the system picks. */
  readonly localAddress?: string;
  /** Speak LMTP (RFC 2033): LHLO instead of EHLO; the transaction then expects one end-of-data reply per recipient. */
  readonly lmtp?: boolean;
  readonly tls: TlsPolicy;
  /** Trusted roots for certificate checks (the system's plus [delivery] tls_ca_file); unset → the system's. */
  readonly ca?: readonly string[];
  readonly auth?: { readonly user: string; readonly password: string };
  /** DANE (RFC 7672): TLS is required and the chain must match these records for one of `names`. */
  readonly dane?: { readonly records: readonly Tlsa[]; readonly names: readonly string[] };
  readonly timeouts: ClientTimeouts;
  readonly log: Logger;
}

export type OpenResult =
  | { readonly ok: true; readonly conn: SmtpConnection }
  /** `tlsHandshakeFailed`: opportunistic TLS broke the connection; the caller may retry this host with tls 'none'. */
  | { readonly ok: false; readonly failure: LastReply; readonly tlsHandshakeFailed?: boolean };

/** 'ready': idle, can start a MAIL FROM; 'needs-rset': the last transaction ended without end of data; 'closed': unusable. */
export type ConnectionState = 'ready' | 'needs-rset' | 'closed';

export class SmtpConnection {
  state: ConnectionState = 'ready';
  /** Transactions started on this connection (MAIL FROM sent). */
  transactions = 0;

  private constructor(
    readonly hop: NextHop,
    readonly label: string,
    private readonly channel: ReplyChannel,
    readonly caps: Capabilities,
    readonly tls: string | undefined,
    readonly timeouts: ClientTimeouts,
    /** An LMTP session: one end-of-data reply per accepted recipient. */
    readonly lmtp: boolean,
    /** Whether the TLS certificate was valid for the host name (checked even when the policy does not require it), or matched DANE. */
    readonly tlsVerified: boolean = false,
    /** The TLSA record the certificate matched, when DANE applied ("DANE-EE 3 1 1 …"). */
    readonly dane?: string,
  ) {}

  /** Connects and brings the session to the point where MAIL FROM may be sent. */
  static async open(hop: NextHop, opts: OpenOptions): Promise<OpenResult> {
    const label = hopLabel(hop);
    const t = opts.timeouts;
    const fail = (failure: LastReply, extra: { tlsHandshakeFailed?: boolean } = {}): OpenResult => ({ ok: false, failure, ...extra });

    const sock = await connectSocket(hop, t.connect, opts.localAddress);
    if ('lost' in sock) return fail(lostReply(sock, 'connect', label));
    let channel = new ReplyChannel(sock);
    const abandon = (failure: LastReply, extra: { tlsHandshakeFailed?: boolean } = {}): OpenResult => {
      void quietQuit(channel, t.command);
      return fail(failure, extra);
    };

    const greeting = await channel.read(t.greeting, 'the greeting');
    if ('lost' in greeting) return abandon(lostReply(greeting, 'greeting', label));
    if (greeting.reply.code !== 220) return abandon(toLastReply(greeting.reply, 'greeting', label));

    const verb = opts.lmtp ? 'LHLO' : 'EHLO';
    let hello = await ehlo(channel, verb, opts.heloName, t.command, label);
    if ('failure' in hello) return abandon(hello.failure);

    let tlsInfo: string | undefined;
    let tlsVerified = false;
    let daneMatched: string | undefined;
    const mustTls = opts.tls === 'required' || opts.tls === 'verify' || opts.dane !== undefined;
    if (opts.tls !== 'none' && hello.caps.starttls) {
      const up = await startTls(channel, hop, opts, label);
      if ('failure' in up) {
        // A refusal by reply leaves the plaintext session intact: opportunistic goes on.
        if (mustTls || up.broken) return abandon(up.failure, up.broken && !mustTls ? { tlsHandshakeFailed: true } : {});
        opts.log.info({ host: label, reply: up.failure.text }, 'STARTTLS refused; continuing in plaintext (opportunistic)');
      } else {
        channel = up.channel;
        tlsInfo = up.info;
        tlsVerified = up.verified;
        daneMatched = up.dane;
        hello = await ehlo(channel, verb, opts.heloName, t.command, label);
        if ('failure' in hello) return abandon(hello.failure);
      }
    } else if (mustTls) {
      return abandon({ code: 451, enhanced: '4.7.10', text: 'TLS is required but the server does not offer STARTTLS', host: label, command: 'EHLO' });
    }

    if (opts.auth) {
      const local = hop.socket !== undefined || isLoopback(hop.address);
      const authed = await authenticate(channel, hello.caps, opts.auth, { tls: tlsInfo !== undefined, loopback: local }, t.command, label, opts.log);
      if (authed) return abandon(authed);
    }
    return { ok: true, conn: new SmtpConnection(hop, label, channel, hello.caps, tlsInfo, t, opts.lmtp === true, tlsVerified, daneMatched) };
  }

  get socket(): net.Socket {
    return this.channel.socket;
  }

  /** Open, nothing unexpected buffered, not marked closed. */
  get usable(): boolean {
    return this.state !== 'closed' && !this.channel.closed && this.channel.unsolicited === 0;
  }

  write(data: string | Buffer | readonly Buffer[], timeoutMs = this.timeouts.command): Promise<Lost | undefined> {
    return this.channel.write(data, timeoutMs);
  }

  read(timeoutMs: number, what: string): Promise<ReadResult> {
    return this.channel.read(timeoutMs, what);
  }

  /** Makes an idle connection ready for MAIL FROM (RSET when the last transaction did not end with end of data). */
  async prepare(): Promise<boolean> {
    if (!this.usable) return false;
    if (this.state === 'ready') return true;
    const lost = await this.write('RSET\r\n');
    const r = lost ?? (await this.read(this.timeouts.command, 'RSET'));
    if ('lost' in r || r.reply.code !== 250) {
      this.destroy();
      return false;
    }
    this.state = 'ready';
    return true;
  }

  /**
   * QUIT, then close. With `untilPeerCloses`, the server's own close (RFC 5321 §4.1.1.10: it closes after
   * 221) is awaited first, up to a second, so the session is over on its side too when this resolves.
   */
  async quit(untilPeerCloses = false): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await quietQuit(this.channel, Math.min(this.timeouts.command, 10_000), untilPeerCloses ? 1_000 : 0);
  }

  destroy(): void {
    this.state = 'closed';
    this.channel.socket.destroy();
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function connectSocket(hop: NextHop, timeoutMs: number, localAddress?: string): Promise<net.Socket | Lost> {
  return new Promise((resolve) => {
    const sock = hop.socket !== undefined ? net.connect({ path: hop.socket })
      : net.connect({ host: hop.address, port: hop.port, family: hop.family, ...(localAddress !== undefined ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ lost: 'no-answer', detail: `connect timeout after ${timeoutMs}ms` });
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // Refused is "no answer" (4.4.1) like a timeout; the kind only picks the enhanced code.
      resolve({ lost: err.code === 'ECONNRESET' ? 'dropped' : 'no-answer', detail: `connect failed (${err.code ?? err.message})` });
    });
  });
}

async function exchange(channel: ReplyChannel, line: string, timeoutMs: number, what: string): Promise<ReadResult> {
  const lost = await channel.write(`${line}\r\n`, timeoutMs);
  return lost ?? channel.read(timeoutMs, what);
}

async function ehlo(channel: ReplyChannel, verb: 'EHLO' | 'LHLO', name: string, timeoutMs: number, label: string): Promise<{ caps: Capabilities } | { failure: LastReply }> {
  const e = await exchange(channel, `${verb} ${name}`, timeoutMs, verb);
  if ('lost' in e) return { failure: lostReply(e, verb, label) };
  if (e.reply.code === 250) return { caps: parseEhlo(e.reply.lines) };
  // RFC 5321 §3.2: a server that does not know EHLO answers 5xx; fall back to HELO then.
  // LMTP has no HELO (RFC 2033 §4.1): a refused LHLO fails the host.
  if (verb === 'LHLO' || e.reply.code < 500 || e.reply.code >= 600) return { failure: toLastReply(e.reply, verb, label) };
  const h = await exchange(channel, `HELO ${name}`, timeoutMs, 'HELO');
  if ('lost' in h) return { failure: lostReply(h, 'HELO', label) };
  if (h.reply.code !== 250) return { failure: toLastReply(h.reply, 'HELO', label) };
  return { caps: NO_CAPABILITIES };
}

async function startTls(
  channel: ReplyChannel,
  hop: NextHop,
  opts: OpenOptions,
  label: string,
): Promise<{ channel: ReplyChannel; info: string; verified: boolean; dane?: string } | { failure: LastReply; broken: boolean }> {
  const r = await exchange(channel, 'STARTTLS', opts.timeouts.command, 'STARTTLS');
  if ('lost' in r) return { failure: lostReply(r, 'STARTTLS', label), broken: true };
  if (r.reply.code !== 220) return { failure: toLastReply(r.reply, 'STARTTLS', label), broken: false };
  const raw = channel.socket;
  const dropped = channel.detachForTls();
  if (dropped > 0) opts.log.warn({ host: label, bytes: dropped }, 'discarded data sent before the TLS handshake (STARTTLS injection defence)');
  const secure = tls.connect({
    socket: raw,
    host: hop.host,
    ...(net.isIP(hop.host) ? {} : { servername: hop.host }),
    // Under DANE the TLSA records, not the CA roots, decide (checked below).
    rejectUnauthorized: opts.tls === 'verify' && opts.dane === undefined,
    minVersion: 'TLSv1.2',
    ...(opts.ca ? { ca: [...opts.ca] } : {}),
  });
  const done = await new Promise<Error | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(new Error(`TLS handshake timeout after ${opts.timeouts.command}ms`)), opts.timeouts.command);
    secure.once('secureConnect', () => { clearTimeout(timer); resolve(undefined); });
    secure.once('error', (err) => { clearTimeout(timer); resolve(err); });
  });
  if (done) {
    secure.destroy();
    return { failure: { code: 451, enhanced: '4.7.5', text: `TLS handshake failed: ${done.message}`, host: label, command: 'STARTTLS' }, broken: true };
  }
  let dane: string | undefined;
  if (opts.dane) {
    const verdict = verifyDane(peerChain(secure), opts.dane.records, opts.dane.names, new Date());
    if (!verdict.ok) {
      secure.destroy();
      return { failure: { code: 451, enhanced: '4.7.5', text: `DANE: certificate of ${hop.host} rejected: ${verdict.reason}`, host: label, command: 'STARTTLS' }, broken: true };
    }
    dane = verdict.matched;
  }
  secure.removeAllListeners('error');
  const next = new ReplyChannel(secure);
  const cipher = secure.getCipher();
  return { channel: next, info: `${secure.getProtocol() ?? 'TLS'} ${cipher.name}`, verified: dane !== undefined || secure.authorized, ...(dane ? { dane } : {}) };
}

/** The certificates the server presented, leaf first (node links them by issuerCertificate; a self-signed one links to itself). */
function peerChain(secure: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  // Bounded by the chain's length: each certificate is visited once.
  for (let c: tls.DetailedPeerCertificate | undefined = secure.getPeerCertificate(true); c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    chain.push(new X509Certificate(c.raw));
  }
  return chain;
}

/** undefined when authenticated; else the failure that makes this host unusable. */
async function authenticate(
  channel: ReplyChannel,
  caps: Capabilities,
  cred: { readonly user: string; readonly password: string },
  secure: { tls: boolean; loopback: boolean },
  timeoutMs: number,
  label: string,
  log: Logger,
): Promise<LastReply | undefined> {
  if (caps.auth.length === 0) {
    // Nothing to authenticate with; the server may relay for us anyway (its reply to RCPT will tell).
    log.warn({ host: label }, 'route has AUTH credentials but the server does not offer AUTH');
    return undefined;
  }
  if (!secure.tls && !secure.loopback) {
    return { code: 451, enhanced: '4.7.10', text: 'refusing to send AUTH credentials without TLS', host: label, command: 'AUTH' };
  }
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  let r: ReadResult;
  if (caps.auth.includes('PLAIN')) {
    r = await exchange(channel, `AUTH PLAIN ${b64(`\0${cred.user}\0${cred.password}`)}`, timeoutMs, 'AUTH');
  } else if (caps.auth.includes('LOGIN')) {
    r = await exchange(channel, 'AUTH LOGIN', timeoutMs, 'AUTH');
    if (!('lost' in r) && r.reply.code === 334) r = await exchange(channel, b64(cred.user), timeoutMs, 'AUTH');
    if (!('lost' in r) && r.reply.code === 334) r = await exchange(channel, b64(cred.password), timeoutMs, 'AUTH');
  } else {
    return { code: 451, enhanced: '4.7.12', text: `no supported AUTH mechanism offered (${caps.auth.join(' ')})`, host: label, command: 'AUTH' };
  }
  if ('lost' in r) return lostReply(r, 'AUTH', label);
  return r.reply.code === 235 ? undefined : toLastReply(r.reply, 'AUTH', label);
}

/** QUIT, wait briefly for 221, then close. Never throws. */
async function quietQuit(channel: ReplyChannel, timeoutMs: number, peerCloseMs = 0): Promise<void> {
  if (!channel.closed) await exchange(channel, 'QUIT', timeoutMs, 'QUIT');
  const socket = channel.socket;
  if (peerCloseMs > 0 && !socket.readableEnded && !socket.destroyed) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, peerCloseMs);
      timer.unref();
      socket.once('end', () => { clearTimeout(timer); resolve(); });
      socket.once('close', () => { clearTimeout(timer); resolve(); });
      socket.resume();
    });
  }
  socket.destroy();
}

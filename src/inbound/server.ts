/**
 * inbound/server — the SMTP listeners: accepts connections, enforces the
 * connection limits (per client IP first, then server-wide: 421 4.7.0,
 * decided by inbound/admission), detects clients that talk before the
 * greeting, and starts a session for each connection.
 *
 * A refused connection gets its one-line reply and is closed within
 * REFUSED_CLOSE_MS whatever the client does: a client that never reads or
 * never closes cannot pile up refused sockets. Node's server.maxConnections
 * is not used: it drops connections silently (no greeting, no 421), which
 * once let one address holding refused sockets shut every client out.
 *
 * An implicit-TLS listener (submission on 465) does the TLS handshake after
 * admission and before the greeting (inbound/implicit-tls). An admitted
 * client over its per-minute connection rate (inbound/anvil, asked through
 * `connectionRateExceeded`) is refused like an over-limit one.
 *
 * Draining (SIGTERM): new connections get 421 4.3.2, idle sessions are told
 * 421 4.3.2, sessions in a transaction finish it. Does not parse SMTP.
 *
 * The counts behind admission are the node's, asked through a
 * ConnectionGate: `localGate` on this thread, or (in an SMTP session worker,
 * app/session-workers) a question to the main thread's, answered later.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { splitHostPort } from '../config/units.js';
import { ERRORS } from '../errors.js';
import { formatReply } from '../smtp/reply.js';
import { ConnectionAdmission, type Admission } from './admission.js';
import { implicitTlsHandshake } from './implicit-tls.js';
import { rejectLine } from './reject-line.js';
import type { SessionDeps, SessionSettings } from './session-deps.js';
import { InboundSession } from './session.js';

/** How long a refused (or pre-greeting) client's socket may stay open after our reply. */
export const REFUSED_CLOSE_MS = 1_000;
/** Refused sockets waiting for their close; beyond this many, more are dropped at once (a flood, not a client). */
const MAX_CLOSING = 10_000;

export interface ListenerSpec {
  readonly address: string; // "host:port"
  readonly kind: 'smtp' | 'submission';
  /** TLS from the first byte (submission on 465, RFC 8314); the session starts after the handshake. */
  readonly implicitTls?: boolean;
  /** Share the address with other listeners of this process (SO_REUSEPORT): one per session worker. */
  readonly reusePort?: boolean;
}

/** Admitted, refused by the counts (inbound/admission), or refused by the per-minute connection rate. */
export type Admitted = Admission | { readonly ok: false; readonly ip: string; readonly reason: 'rate'; readonly enhanced: string; readonly text: string };

/** Where the node's connection counts are kept: `admit` counts an admitted connection until its `release`. */
export interface ConnectionGate {
  admit(remoteIp: string, draining: boolean): Admitted | Promise<Admitted>;
  release(ip: string): void;
}

/** The node's gate on this thread: per-IP and server-wide counts first, then the per-minute rate. */
export function localGate(limits: InboundLimits): ConnectionGate {
  const admission = new ConnectionAdmission(limits);
  return {
    admit(remoteIp, draining) {
      const a = admission.admit(remoteIp, draining);
      if (!a.ok || !limits.connectionRateExceeded?.(a.ip)) return a;
      admission.release(a.ip);
      const { enhanced, text } = ERRORS.HAL_ERR_RATE_CONNECTIONS;
      return { ok: false, ip: a.ip, reason: 'rate', enhanced, text };
    },
    release: (ip) => admission.release(ip),
  };
}

export interface InboundLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Wait this long before the greeting; a client that talks first is refused (0 = greet at once). */
  readonly greetingDelayMs: number;
  /** Per-client connection rate (inbound/anvil): true when this connection is over it (421 4.7.0). */
  readonly connectionRateExceeded?: (ip: string) => boolean;
}

/** Where it is parsed (config/units); re-exported for the callers that import it from here. */
export { splitHostPort };

export class InboundServer {
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Set<InboundSession>();
  private readonly sockets = new Set<net.Socket>();
  private readonly closing = new Set<net.Socket>();
  private draining = false;

  /** `gate`: where the connection counts live (default: this thread, `localGate(limits)`). */
  constructor(
    private readonly limits: InboundLimits,
    private readonly sessionDeps: (kind: 'smtp' | 'submission') => Omit<SessionDeps, 'isDraining'> & { settings: SessionSettings },
    private readonly log: Logger,
    private readonly onConnection?: (kind: string) => void,
    private readonly gate: ConnectionGate = localGate(limits),
  ) {}

  /** Starts every listener; resolves with the bound "host:port" of each (ports resolved when 0 was asked). */
  async listen(specs: readonly ListenerSpec[]): Promise<{ kind: string; address: string }[]> {
    const bound: { kind: string; address: string }[] = [];
    for (const spec of specs) {
      const { host, port } = splitHostPort(spec.address);
      const server = net.createServer((sock) => this.accept(sock, spec.kind, spec.implicitTls === true));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: 1024, ...(spec.reusePort ? { reusePort: true } : {}) }, () => resolve());
      });
      const a = server.address() as net.AddressInfo;
      bound.push({ kind: spec.kind, address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` });
      this.servers.push(server);
    }
    return bound;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Writes `reply`, half-closes, and destroys the socket after REFUSED_CLOSE_MS if the client has not closed it. */
  private closeSoon(sock: net.Socket, reply: string): void {
    if (this.closing.size >= MAX_CLOSING) {
      sock.destroy();
      return;
    }
    this.closing.add(sock);
    const timer = setTimeout(() => sock.destroy(), REFUSED_CLOSE_MS);
    sock.once('close', () => {
      clearTimeout(timer);
      this.closing.delete(sock);
    });
    sock.resume(); // whatever it sends is ignored, never buffered
    sock.end(reply);
  }

  private accept(sock: net.Socket, kind: 'smtp' | 'submission', implicitTls = false): void {
    sock.setNoDelay(true);
    sock.on('error', () => { /* reset by peer */ });
    const a = this.gate.admit(sock.remoteAddress ?? '?', this.draining);
    if (!(a instanceof Promise)) return this.admitted(sock, kind, implicitTls, a);
    // Asked of another thread: a client gone before the answer gives its place back at once.
    let gone = false;
    sock.once('close', () => { gone = true; });
    void a.then((v) => {
      if (!gone) return this.admitted(sock, kind, implicitTls, v);
      if (v.ok) this.gate.release(v.ip);
    }, () => sock.destroy());
  }

  private admitted(sock: net.Socket, kind: 'smtp' | 'submission', implicitTls: boolean, a: Admitted): void {
    const ip = a.ip;
    if (!a.ok) {
      this.closeSoon(sock, formatReply(421, a.enhanced, a.text));
      const reason = { 'per-ip': 'connections_per_ip', server: 'connections', draining: 'draining', rate: 'rate_connections' }[a.reason];
      this.logReject(ip, reason, 421, a.enhanced, a.text);
      return;
    }
    this.sockets.add(sock);
    this.onConnection?.(kind);
    this.log.info({ ip, event: 'connect', listener: kind }, 'connection');
    const deps = { ...this.sessionDeps(kind), isDraining: () => this.draining };
    let session: InboundSession | undefined;
    sock.once('close', () => {
      this.sockets.delete(sock);
      if (session) this.sessions.delete(session);
      this.gate.release(ip);
    });
    if (!implicitTls) {
      session = new InboundSession(sock, deps);
      return this.greet(sock, session, ip);
    }
    if (!deps.tlsContext) return void sock.destroy();
    void implicitTlsHandshake(sock, deps.tlsContext, deps.settings.commandTimeoutMs).then((h) => {
      if (!h.ok) return void this.log.info({ ip, event: 'tls_failed', err: h.reason }, 'TLS handshake failed');
      session = new InboundSession(h.socket, deps, h.description);
      this.greet(h.socket, session, ip);
    });
  }

  /** Starts the session with its greeting, after greeting_delay when one is set. */
  private greet(sock: net.Socket, session: InboundSession, ip: string): void {
    if (this.limits.greetingDelayMs <= 0) {
      this.sessions.add(session);
      session.start();
      return;
    }
    // A client that speaks before the greeting is not waiting for replies: a
    // spam engine, or a smuggling attempt.
    const early = () => {
      clearTimeout(timer);
      this.closeSoon(sock, formatReply(554, '5.5.0', 'Error: SMTP protocol synchronization (you talked before the greeting)'));
      this.logReject(ip, 'pregreet', 554, '5.5.0', 'Error: SMTP protocol synchronization (you talked before the greeting)');
    };
    sock.once('data', early);
    const timer = setTimeout(() => {
      sock.removeListener('data', early);
      this.sessions.add(session);
      session.start();
    }, this.limits.greetingDelayMs);
  }

  /** A refused connection's reject line (inbound/reject-line), like every other refusal. */
  private logReject(ip: string, reason: string, code: number, enhanced: string, text: string): void {
    const { fields, msg } = rejectLine('CONNECT', reason, { ip }, { code, enhanced, text });
    this.log.info(fields, msg);
  }

  /** Stops accepting (new connections get 421 4.3.2) and waits for sessions to end, up to deadlineMs. */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    for (const s of this.sessions) s.drain();
    const until = Date.now() + deadlineMs;
    while (this.sockets.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await this.close();
  }

  async close(): Promise<void> {
    for (const sock of this.sockets) sock.destroy();
    for (const sock of this.closing) sock.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }
}

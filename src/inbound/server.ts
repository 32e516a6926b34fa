/**
 * inbound/server — the SMTP listeners: accepts connections, enforces the
 * connection limits (global and per client IP: 421 4.7.0), detects clients
 * that talk before the greeting, and starts a session for each connection.
 *
 * An implicit-TLS listener (submission on 465) does the TLS handshake after
 * admission and before the greeting (inbound/implicit-tls).
 *
 * Draining (SIGTERM): new connections get 421 4.3.2, idle sessions are told
 * 421 4.3.2, sessions in a transaction finish it. Does not parse SMTP.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { ERRORS } from '../errors.js';
import { formatReply } from '../smtp/reply.js';
import { implicitTlsHandshake } from './implicit-tls.js';
import { InboundSession, type SessionDeps, type SessionSettings } from './session.js';

export interface ListenerSpec {
  readonly address: string; // "host:port"
  readonly kind: 'smtp' | 'submission';
  /** TLS from the first byte (submission on 465, RFC 8314); the session starts after the handshake. */
  readonly implicitTls?: boolean;
}

export interface InboundLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Wait this long before the greeting; a client that talks first is refused (0 = greet at once). */
  readonly greetingDelayMs: number;
  /** Per-client connection rate (inbound/anvil): true when this connection is over it (421 4.7.0). */
  readonly connectionRateExceeded?: (ip: string) => boolean;
}

export function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

export class InboundServer {
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Set<InboundSession>();
  private readonly sockets = new Set<net.Socket>();
  private readonly perIp = new Map<string, number>();
  private draining = false;

  constructor(
    private readonly limits: InboundLimits,
    private readonly sessionDeps: (kind: 'smtp' | 'submission') => Omit<SessionDeps, 'isDraining'> & { settings: SessionSettings },
    private readonly log: Logger,
    private readonly onConnection?: (kind: string) => void,
  ) {}

  /** Starts every listener; resolves with the bound "host:port" of each (ports resolved when 0 was asked). */
  async listen(specs: readonly ListenerSpec[]): Promise<{ kind: string; address: string }[]> {
    const bound: { kind: string; address: string }[] = [];
    for (const spec of specs) {
      const { host, port } = splitHostPort(spec.address);
      const server = net.createServer((sock) => this.accept(sock, spec.kind, spec.implicitTls === true));
      server.maxConnections = this.limits.maxConnections + 50; // above ours, so we can still say 421
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, backlog: 1024 }, () => resolve());
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

  private accept(sock: net.Socket, kind: 'smtp' | 'submission', implicitTls = false): void {
    const ip = sock.remoteAddress ?? '?';
    sock.setNoDelay(true);
    sock.on('error', () => { /* reset by peer */ });
    const refuse = (enhanced: string, text: string) => {
      sock.end(formatReply(421, enhanced, text));
      this.log.info({ ip, event: 'refused', reason: text }, 'connection refused');
    };
    if (this.draining) return refuse(ERRORS.HAL_ERR_SHUTTING_DOWN.enhanced, ERRORS.HAL_ERR_SHUTTING_DOWN.text);
    if (this.sockets.size >= this.limits.maxConnections) return refuse('4.7.0', 'Too many connections, try again later');
    if ((this.perIp.get(ip) ?? 0) >= this.limits.maxConnectionsPerIp) return refuse('4.7.0', 'Too many connections from your address');
    if (this.limits.connectionRateExceeded?.(ip)) return refuse(ERRORS.HAL_ERR_RATE_CONNECTIONS.enhanced, ERRORS.HAL_ERR_RATE_CONNECTIONS.text);
    this.sockets.add(sock);
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    this.onConnection?.(kind);
    this.log.info({ ip, event: 'connect', listener: kind }, 'connection');
    const deps = { ...this.sessionDeps(kind), isDraining: () => this.draining };
    let session: InboundSession | undefined;
    sock.once('close', () => {
      this.sockets.delete(sock);
      if (session) this.sessions.delete(session);
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, n);
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
      sock.end(formatReply(554, '5.5.0', 'Error: SMTP protocol synchronization (you talked before the greeting)'));
      this.log.info({ ip, event: 'pregreet' }, 'client talked before the greeting');
    };
    sock.once('data', early);
    const timer = setTimeout(() => {
      sock.removeListener('data', early);
      this.sessions.add(session);
      session.start();
    }, this.limits.greetingDelayMs);
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
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }
}

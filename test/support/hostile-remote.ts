/**
 * test/support/hostile-remote — a remote SMTP server that attacks its client:
 * it greets, then answers EHLO (or HELO) with `250-` continuation lines
 * forever, never the final `250 ` line, writing as fast as the client reads
 * (backpressure respected) up to `capBytes`, then holds the connection open.
 *
 * It records per connection how many bytes it got written before the client
 * hung up, and whether the client hung up at all. A test double for issue 10
 * (bounded replies); loopback only; never use it outside tests.
 */
import net from 'node:net';

export interface HostileConnection {
  bytesWritten: number;
  /** The client closed or reset the connection. */
  closedByClient: boolean;
  /** The cap was reached with the client still reading. */
  capReached: boolean;
}

export interface HostileRemote {
  readonly port: number;
  readonly connections: HostileConnection[];
  close(): Promise<void>;
}

const LINE = Buffer.from(`250-${'X'.repeat(200)}\r\n`);

export async function startHostileRemote(opts: { capBytes?: number } = {}): Promise<HostileRemote> {
  const cap = opts.capBytes ?? 128 * 1024 * 1024;
  const connections: HostileConnection[] = [];
  const sockets = new Set<net.Socket>();
  const block = Buffer.concat(Array.from({ length: 64 }, () => LINE));
  const server = net.createServer((sock) => {
    sockets.add(sock);
    const rec: HostileConnection = { bytesWritten: 0, closedByClient: false, capReached: false };
    connections.push(rec);
    let streaming = false;
    const pump = (): void => {
      while (!sock.destroyed) {
        if (rec.bytesWritten >= cap) {
          rec.capReached = true;
          return;
        }
        rec.bytesWritten += block.length;
        if (!sock.write(block)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    sock.on('data', (d) => {
      if (!streaming && /^(EHLO|HELO) /im.test(d.toString('latin1'))) {
        streaming = true;
        sock.write('250-hostile.test says hello\r\n');
        pump();
      }
    });
    sock.on('close', () => {
      if (!rec.capReached) rec.closedByClient = true;
      sockets.delete(sock);
    });
    sock.on('error', () => { /* the client hanging up mid-write is what we expect */ });
    sock.write('220 hostile.test ESMTP\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

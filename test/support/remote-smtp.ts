/**
 * test/support/remote-smtp — a scriptable remote SMTP server over real sockets
 * (127.0.0.1, ephemeral port) for Halcyon's outbound integration tests.
 *
 * It plays whatever remote a test needs: a banner of its choice, the EHLO
 * extensions to advertise (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN,
 * ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN LOGIN, CHUNKING), replies per
 * recipient, a recipient limit K with its reply, overrides for MAIL, DATA and
 * end of data, dropping the connection after the data, slow replies, refusing
 * or hanging connections, or turning away sessions above a limit with a
 * reply of its choice. It records every connection, every command line and
 * every transaction (sender, accepted recipients, dot-unstuffed data), and
 * counts current and peak concurrent sessions.
 *
 * Commands are read as they arrive and answered strictly in order, so a
 * pipelining client sees exactly what a real server would send. It is a test
 * double: it stores nothing, relays nothing and checks only the protocol
 * sequence (not addresses); never use it outside tests.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface Extensions {
  pipelining?: boolean;
  size?: number;
  eightBitMime?: boolean;
  smtputf8?: boolean;
  dsn?: boolean;
  enhancedStatusCodes?: boolean;
  /** Advertise STARTTLS and upgrade with this key/cert (PEM). */
  starttls?: { key: string | Buffer; cert: string | Buffer };
  /** Advertise AUTH PLAIN LOGIN and accept only these credentials. */
  auth?: { user: string; password: string };
  chunking?: boolean;
}

export interface RcptContext {
  readonly connection: number;
  readonly mailFrom: string;
  /** Recipients accepted so far in this transaction (the server's A). */
  readonly accepted: number;
  /** 0-based index of this RCPT TO in the transaction. */
  readonly index: number;
}

export interface RemoteOptions {
  /** Greeting line, e.g. '421 busy' (then closes) or '554 no service' (then 503 to all but QUIT). */
  banner?: string;
  hostname?: string;
  /** Rejected with 502 when false: a HELO-only server. */
  ehlo?: boolean;
  extensions?: Extensions;
  /** Reply line for a recipient; undefined → 250 2.1.5 (or the limit reply). */
  rcpt?: (rcpt: string, ctx: RcptContext) => string | undefined;
  /** Once K recipients were accepted in a transaction, every further RCPT TO gets `reply`. */
  rcptLimit?: { max: number; reply: string };
  mailReply?: string;
  /** Reply to DATA; default 354. */
  dataReply?: string;
  /** Reply to a BDAT chunk that is not the last (n = 1 for the first); default 250. */
  chunkReply?: (n: number) => string;
  /** Reply to the final dot / last BDAT; a function sees the transaction just received. */
  endOfDataReply?: string | ((tx: RecordedTransaction) => string);
  /** Close the connection after the final dot, without replying. */
  dropConnectionAfterData?: boolean;
  /** Wait this long before every reply (banner included). */
  delayMs?: number;
  /** Close every connection at once, before any greeting. */
  refuse?: boolean;
  /** Accept connections and never greet. */
  hang?: boolean;
  /**
   * A connection that would make more than `max` sessions open at once gets `reply` as its greeting,
   * then is closed; with `at: 'MAIL FROM'` it is greeted and gets `reply` to every MAIL FROM instead
   * (the connection stays open until the client leaves).
   */
  maxSessions?: { max: number; reply: string; at?: 'greeting' | 'MAIL FROM' };
}

export interface RecordedConnection {
  readonly id: number;
  readonly remotePort: number;
  /** The peer's address (the client's source address). */
  readonly remoteAddress: string;
  open: boolean;
  tls: boolean;
  /** Turned away by `maxSessions` (at the greeting, or at every MAIL FROM). */
  overLimit?: boolean;
  ehlo?: string;
  authUser?: string;
}

export interface RecordedTransaction {
  readonly connection: number;
  readonly mailFrom: string;
  /** The MAIL FROM line's parameters, as sent (e.g. ['SIZE=123', 'BODY=8BITMIME']). */
  readonly mailParams: string[];
  /** Accepted recipients, in order. */
  readonly rcpts: string[];
  /** Every RCPT TO with the reply it got. */
  readonly rcptReplies: { rcpt: string; reply: string }[];
  /** The content, dot-unstuffed (DATA) or concatenated (BDAT). */
  data: Buffer;
  /** The end-of-data reply sent; undefined when the connection was dropped instead. */
  reply?: string;
}

export interface RecordedCommand {
  readonly connection: number;
  readonly line: string;
}

export interface Remote {
  readonly port: number;
  readonly connections: RecordedConnection[];
  readonly commands: RecordedCommand[];
  /** Transactions whose content was received in full. */
  readonly transactions: RecordedTransaction[];
  readonly current: number;
  readonly maxConcurrent: number;
  /** Peak of SMTP sessions at once: from accept until QUIT was answered (or the connection closed), so TCP teardown after 221 does not count. */
  readonly maxConcurrentSessions: number;
  setOptions(partial: Partial<RemoteOptions>): void;
  /** Forgets what was recorded (and resets maxConcurrent to the current count). */
  clear(): void;
  /** Resolves when pred() holds, checked after each recorded event; rejects after timeoutMs. */
  waitFor(pred: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** How many RCPT TO commands the remote received for an address (case-blind). */
export const rcptsFor = (remote: Pick<Remote, 'commands'>, address: string): number =>
  remote.commands.filter((c) => c.line.toUpperCase().startsWith('RCPT TO:') && c.line.toLowerCase().includes(`<${address.toLowerCase()}>`)).length;

const withCrlf = (line: string): string => (line.endsWith('\r\n') ? line : `${line}\r\n`);
const codeOf = (line: string): number => Number(line.slice(0, 3));
const addrOf = (arg: string): { addr: string; params: string[] } | undefined => {
  const m = /^\s*<([^>]*)>\s*(.*)$/.exec(arg);
  return m ? { addr: m[1]!, params: m[2]!.split(/\s+/).filter(Boolean) } : undefined;
};

export async function startRemote(initial: RemoteOptions = {}): Promise<Remote> {
  let opts: RemoteOptions = { ...initial };
  const connections: RecordedConnection[] = [];
  const commands: RecordedCommand[] = [];
  const transactions: RecordedTransaction[] = [];
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();
  let current = 0;
  let maxConcurrent = 0;
  let sessions = 0;
  let maxConcurrentSessions = 0;
  let closing = false;
  const changed = (): void => waiters.forEach((w) => w());
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
      timers.add(t);
    });

  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('error', () => { /* peers reset; a test double only records */ });
    const conn: RecordedConnection = { id: connections.length + 1, remotePort: raw.remotePort ?? 0, remoteAddress: raw.remoteAddress ?? '', open: true, tls: false };
    connections.push(conn);
    current++;
    maxConcurrent = Math.max(maxConcurrent, current);
    sessions++;
    maxConcurrentSessions = Math.max(maxConcurrentSessions, sessions);
    let sessionOver = false;
    (raw as net.Socket & { endSession?: () => void }).endSession = () => {
      if (sessionOver) return;
      sessionOver = true;
      sessions--;
    };
    raw.on('close', () => {
      (raw as net.Socket & { endSession?: () => void }).endSession?.();
      sockets.delete(raw);
      conn.open = false;
      current--;
      changed();
    });
    changed();
    if (opts.refuse) return void raw.destroy();
    if (opts.hang) return;
    if (opts.maxSessions && current > opts.maxSessions.max) {
      conn.overLimit = true;
      if (opts.maxSessions.at !== 'MAIL FROM') {
        raw.end(withCrlf(opts.maxSessions.reply));
        return;
      }
    }
    session(raw, conn);
  });

  function session(raw: net.Socket, conn: RecordedConnection): void {
    let sock: net.Socket = raw;
    let buf = Buffer.alloc(0);
    let busy = false;
    let closed = false;
    let greeted = false;
    let noService = false;
    let helo = false;
    let tx: RecordedTransaction | undefined;
    let mode: 'cmd' | 'data' | 'bdat' = 'cmd';
    let bdat = { remaining: 0, last: false };
    let chunks = 0;
    let auth: 'plain' | 'login-user' | 'login-pass' | undefined;
    let loginUser = '';
    raw.on('close', () => { closed = true; });

    const reply = async (line: string): Promise<void> => {
      if (opts.delayMs) await sleep(opts.delayMs);
      if (!closed && !sock.destroyed) sock.write(withCrlf(line));
    };
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      void pump();
    };
    raw.on('data', onData);

    /** Takes one unit (a line, or BDAT bytes) at a time so replies go out in command order. */
    async function pump(): Promise<void> {
      if (busy) return;
      busy = true;
      try {
        while (!closed && greeted) {
          if (mode === 'bdat') {
            if (buf.length === 0) break;
            const n = Math.min(buf.length, bdat.remaining);
            tx!.data = Buffer.concat([tx!.data, buf.subarray(0, n)]);
            buf = buf.subarray(n);
            bdat.remaining -= n;
            if (bdat.remaining === 0) await endOfChunk();
            continue;
          }
          const nl = buf.indexOf(0x0a);
          if (nl < 0) break;
          const lineBuf = buf.subarray(0, nl + 1);
          buf = buf.subarray(nl + 1);
          if (mode === 'data') await dataLine(lineBuf);
          else await command(lineBuf.toString('utf8').replace(/\r?\n$/, ''));
        }
      } finally {
        busy = false;
      }
    }

    async function dataLine(line: Buffer): Promise<void> {
      if (line.equals(Buffer.from('.\r\n'))) {
        mode = 'cmd';
        return endOfData();
      }
      const unstuffed = line[0] === 0x2e ? line.subarray(1) : line;
      tx!.data = Buffer.concat([tx!.data, unstuffed]);
    }

    async function endOfData(): Promise<void> {
      const t = tx!;
      tx = undefined;
      if (opts.dropConnectionAfterData) {
        transactions.push(t);
        changed();
        sock.destroy();
        return;
      }
      const r = typeof opts.endOfDataReply === 'function' ? opts.endOfDataReply(t) : opts.endOfDataReply ?? `250 2.0.0 Ok: queued as ${transactions.length + 1}`;
      t.reply = r;
      transactions.push(t);
      changed();
      await reply(r);
    }

    async function endOfChunk(): Promise<void> {
      mode = 'cmd';
      if (bdat.last) return endOfData();
      chunks++;
      const r = opts.chunkReply?.(chunks) ?? '250 2.0.0 chunk received';
      if (codeOf(r) >= 400) {
        // A refused chunk ends the transaction (RFC 3030 §4.2): its data is discarded.
        tx = undefined;
        chunks = 0;
      }
      await reply(r);
    }

    async function command(line: string): Promise<void> {
      commands.push({ connection: conn.id, line });
      changed();
      if (auth) return authStep(line);
      const sp = line.indexOf(' ');
      const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      const arg = sp < 0 ? '' : line.slice(sp + 1);
      if (verb === 'QUIT') {
        await reply('221 2.0.0 Bye');
        (raw as net.Socket & { endSession?: () => void }).endSession?.();
        sock.end();
        return;
      }
      if (noService) return reply('503 5.5.1 No service here');
      switch (verb) {
        case 'EHLO':
          if (opts.ehlo === false) return reply('502 5.5.2 EHLO not supported');
          helo = true;
          tx = undefined;
          conn.ehlo = arg;
          return reply(ehloReply());
        case 'HELO':
          helo = true;
          tx = undefined;
          conn.ehlo = arg;
          return reply(`250 ${opts.hostname ?? 'remote.test'}`);
        case 'NOOP':
          return reply('250 2.0.0 Ok');
        case 'RSET':
          tx = undefined;
          return reply('250 2.0.0 Ok');
        case 'VRFY':
          return reply('252 2.5.2 Cannot VRFY');
        case 'STARTTLS':
          return starttls();
        case 'AUTH':
          return authStart(arg);
        case 'MAIL': {
          const a = /^FROM:(.*)$/i.exec(arg);
          const p = a && addrOf(a[1]!);
          if (!helo) return reply('503 5.5.1 EHLO first');
          if (tx) return reply('503 5.5.1 Nested MAIL command');
          if (!p) return reply('501 5.5.4 Syntax: MAIL FROM:<address>');
          const size = p.params.find((x) => /^SIZE=/i.test(x));
          const max = opts.extensions?.size;
          if (size && max && Number(size.slice(5)) > max) return reply('552 5.3.4 Message size exceeds fixed limit');
          const r = conn.overLimit && opts.maxSessions ? opts.maxSessions.reply : opts.mailReply ?? '250 2.1.0 Ok';
          if (codeOf(r) < 300) tx = { connection: conn.id, mailFrom: p.addr, mailParams: p.params, rcpts: [], rcptReplies: [], data: Buffer.alloc(0) };
          return reply(r);
        }
        case 'RCPT': {
          const a = /^TO:(.*)$/i.exec(arg);
          const p = a && addrOf(a[1]!);
          if (!tx) return reply('503 5.5.1 Need MAIL command');
          if (!p) return reply('501 5.5.4 Syntax: RCPT TO:<address>');
          const limit = opts.rcptLimit;
          const ctx: RcptContext = { connection: conn.id, mailFrom: tx.mailFrom, accepted: tx.rcpts.length, index: tx.rcptReplies.length };
          const r = limit && tx.rcpts.length >= limit.max ? limit.reply : opts.rcpt?.(p.addr, ctx) ?? '250 2.1.5 Ok';
          tx.rcptReplies.push({ rcpt: p.addr, reply: r });
          if (codeOf(r) < 300) tx.rcpts.push(p.addr);
          await reply(r);
          if (codeOf(r) === 421) sock.end();
          return;
        }
        case 'DATA': {
          if (!tx) return reply('503 5.5.1 Need MAIL command');
          if (tx.rcpts.length === 0) return reply('554 5.5.1 No valid recipients');
          const r = opts.dataReply ?? '354 End data with <CR><LF>.<CR><LF>';
          if (codeOf(r) === 354) mode = 'data';
          else tx = undefined;
          return reply(r);
        }
        case 'BDAT': {
          const m = /^(\d+)(\s+LAST)?\s*$/i.exec(arg);
          if (!m) return reply('501 5.5.4 Syntax: BDAT size [LAST]');
          if (!tx || tx.rcpts.length === 0) return reply('503 5.5.1 No valid recipients');
          mode = 'bdat';
          bdat = { remaining: Number(m[1]), last: Boolean(m[2]) };
          if (bdat.remaining === 0) return endOfChunk();
          return;
        }
        default:
          return reply('500 5.5.2 Command not recognized');
      }
    }

    function ehloReply(): string {
      const e = opts.extensions ?? { pipelining: true, enhancedStatusCodes: true, eightBitMime: true };
      const kw: string[] = [];
      if (e.pipelining) kw.push('PIPELINING');
      if (e.size !== undefined) kw.push(`SIZE ${e.size}`);
      if (e.eightBitMime) kw.push('8BITMIME');
      if (e.smtputf8) kw.push('SMTPUTF8');
      if (e.dsn) kw.push('DSN');
      if (e.enhancedStatusCodes) kw.push('ENHANCEDSTATUSCODES');
      if (e.starttls && !conn.tls) kw.push('STARTTLS');
      if (e.auth) kw.push('AUTH PLAIN LOGIN');
      if (e.chunking) kw.push('CHUNKING');
      const lines = [`${opts.hostname ?? 'remote.test'} greets ${conn.ehlo}`, ...kw];
      return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\r\n');
    }

    async function starttls(): Promise<void> {
      const cfg = opts.extensions?.starttls;
      if (!cfg || conn.tls) return reply('454 4.7.0 TLS not available');
      // Stop reading cleartext now; anything pipelined after STARTTLS is discarded (injection).
      raw.removeListener('data', onData);
      buf = Buffer.alloc(0);
      await reply('220 2.0.0 Ready to start TLS');
      const secure = new tls.TLSSocket(raw, { isServer: true, key: cfg.key, cert: cfg.cert });
      secure.on('error', () => { /* handshake failures are the client's test to assert */ });
      secure.on('data', onData);
      sock = secure;
      conn.tls = true;
      helo = false;
      tx = undefined;
    }

    async function authStart(arg: string): Promise<void> {
      const [mech, initial] = arg.split(/\s+/);
      if (!opts.extensions?.auth) return reply('502 5.5.1 AUTH not available');
      if (mech?.toUpperCase() === 'PLAIN') {
        if (initial) return authPlain(initial);
        auth = 'plain';
        return reply('334 ');
      }
      if (mech?.toUpperCase() === 'LOGIN') {
        if (initial) {
          loginUser = Buffer.from(initial, 'base64').toString();
          auth = 'login-pass';
          return reply('334 UGFzc3dvcmQ6');
        }
        auth = 'login-user';
        return reply('334 VXNlcm5hbWU6');
      }
      return reply('504 5.5.4 Unrecognized authentication type');
    }

    async function authPlain(b64: string): Promise<void> {
      auth = undefined;
      const [, user = '', pass = ''] = Buffer.from(b64, 'base64').toString().split('\0');
      return authDone(user, pass);
    }

    async function authStep(line: string): Promise<void> {
      if (line === '*') {
        auth = undefined;
        return reply('501 5.0.0 Authentication cancelled');
      }
      if (auth === 'plain') return authPlain(line);
      if (auth === 'login-user') {
        loginUser = Buffer.from(line, 'base64').toString();
        auth = 'login-pass';
        return reply('334 UGFzc3dvcmQ6');
      }
      auth = undefined;
      return authDone(loginUser, Buffer.from(line, 'base64').toString());
    }

    async function authDone(user: string, pass: string): Promise<void> {
      const want = opts.extensions?.auth;
      if (want && user === want.user && pass === want.password) {
        conn.authUser = user;
        return reply('235 2.7.0 Authentication successful');
      }
      return reply('535 5.7.8 Authentication credentials invalid');
    }

    void (async () => {
      const banner = opts.banner ?? `220 ${opts.hostname ?? 'remote.test'} ESMTP test remote`;
      await reply(banner);
      if (codeOf(banner) === 421) return void sock.end();
      noService = codeOf(banner) !== 220;
      greeted = true;
      await pump();
    })();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    connections,
    commands,
    transactions,
    get current() { return current; },
    get maxConcurrent() { return maxConcurrent; },
    get maxConcurrentSessions() { return maxConcurrentSessions; },
    setOptions(partial) { opts = { ...opts, ...partial }; },
    clear() {
      connections.length = 0;
      commands.length = 0;
      transactions.length = 0;
      maxConcurrent = current;
      maxConcurrentSessions = sessions;
    },
    waitFor(pred, timeoutMs = 5000) {
      return new Promise<void>((resolve, reject) => {
        if (pred()) return resolve();
        const done = (): void => { waiters.delete(check); clearTimeout(t); };
        const check = (): void => { if (pred()) { done(); resolve(); } };
        const t = setTimeout(() => { done(); reject(new Error('remote-smtp: waitFor timed out')); }, timeoutMs);
        waiters.add(check);
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      timers.forEach((t) => clearTimeout(t));
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

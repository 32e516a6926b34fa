/**
 * bench/latency — end-of-data latency: opens N SMTP sessions to
 * 127.0.0.1:port, each sending messages in a loop on its own connection
 * (EHLO once, then MAIL, RCPT, DATA, body, "." per message), and times each
 * final "." → reply with process.hrtime. Bounded by a total message count and
 * a deadline; returns the sorted latencies and how many messages failed.
 *
 * It does not pipeline, use TLS, or check what the server does with the mail.
 */
import net from 'node:net';

export interface LatencyResult {
  /** End-of-data → 250, in ms, ascending. */
  readonly ms: number[];
  readonly failed: number;
  readonly seconds: number;
}

/** One line-reading SMTP session; replies are read whole (multi-line aware). */
class Session {
  private buf = '';
  private waiter: ((reply: string) => void) | undefined;
  private failure: Error | undefined;
  private readonly replies: string[] = [];

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.setNoDelay(true);
    sock.on('data', (d: string) => {
      this.buf += d;
      for (;;) {
        // A complete reply ends with a line "NNN " (not "NNN-").
        const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.buf);
        if (!m) break;
        const end = m.index + m[0].length;
        const reply = this.buf.slice(0, end).replace(/^\r\n/, '');
        this.buf = this.buf.slice(end);
        if (this.waiter) { const w = this.waiter; this.waiter = undefined; w(reply); } else this.replies.push(reply);
      }
    });
    const fail = (e: Error): void => {
      this.failure = e;
      if (this.waiter) { const w = this.waiter; this.waiter = undefined; w(`000 ${e.message}\r\n`); }
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  static connect(port: number): Promise<Session> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(new Session(s)));
      s.once('error', reject);
    });
  }

  read(): Promise<string> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (this.failure) return Promise.resolve(`000 ${this.failure.message}\r\n`);
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  async cmd(line: string): Promise<number> {
    this.sock.write(`${line}\r\n`);
    return Number((await this.read()).slice(0, 3));
  }

  write(data: string): void {
    this.sock.write(data);
  }

  close(): void {
    this.sock.destroy();
  }
}

function body(size: number): string {
  const head = 'From: <from@example.test>\r\nTo: <to@example.test>\r\nSubject: latency bench\r\n\r\n';
  const line = `${'x'.repeat(76)}\r\n`;
  return head + line.repeat(Math.max(1, Math.ceil(size / line.length)));
}

/** Sends `total` messages over `sessions` concurrent sessions; stops early at deadlineMs. */
export async function measureLatency(port: number, sessions: number, total: number, deadlineMs: number, size = 1024): Promise<LatencyResult> {
  const text = body(size);
  const ms: number[] = [];
  let failed = 0;
  let next = 0;
  const deadline = Date.now() + deadlineMs;
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    let s: Session | undefined;
    try {
      s = await Session.connect(port);
      if (Number((await s.read()).slice(0, 3)) !== 220) { failed++; return; }
      if (await s.cmd('EHLO latency.bench.test') !== 250) { failed++; return; }
      while (next < total && Date.now() < deadline) {
        next++;
        if (await s.cmd('MAIL FROM:<from@example.test>') !== 250
          || await s.cmd('RCPT TO:<to@example.test>') !== 250
          || await s.cmd('DATA') !== 354) { failed++; await s.cmd('RSET'); continue; }
        s.write(text);
        const start = process.hrtime.bigint();
        const code = await s.cmd('.');
        const took = Number(process.hrtime.bigint() - start) / 1e6;
        if (code === 250) ms.push(took); else failed++;
        if (code === 0) return;
      }
      await s.cmd('QUIT');
    } catch {
      failed++;
    } finally {
      s?.close();
    }
  };
  await Promise.all(Array.from({ length: sessions }, worker));
  return { ms: ms.sort((a, b) => a - b), failed, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** The q-quantile (nearest rank) of an ascending list; NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Sends one message to several recipients on one session; returns the end-of-data reply code (0 on failure). */
export async function sendOne(port: number, from: string, to: readonly string[], size = 1024): Promise<{ code: number; rcptCodes: number[] }> {
  const s = await Session.connect(port);
  const rcptCodes: number[] = [];
  try {
    if (Number((await s.read()).slice(0, 3)) !== 220) return { code: 0, rcptCodes };
    if (await s.cmd('EHLO one.bench.test') !== 250) return { code: 0, rcptCodes };
    if (await s.cmd(`MAIL FROM:<${from}>`) !== 250) return { code: 0, rcptCodes };
    for (const r of to) rcptCodes.push(await s.cmd(`RCPT TO:<${r}>`));
    if (await s.cmd('DATA') !== 354) return { code: 0, rcptCodes };
    s.write(body(size));
    const code = await s.cmd('.');
    await s.cmd('QUIT');
    return { code, rcptCodes };
  } finally {
    s.close();
  }
}

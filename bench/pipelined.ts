/**
 * bench/pipelined — a pipelining client against a fresh Halcyon (smtp-source
 * cannot pipeline): S sessions, each EHLO once, then N messages of
 * MAIL + R × RCPT + DATA in one write and the content after the 354. Prints
 * Halcyon's CPU seconds (user + system, its process) per 1,000 messages from
 * the first session's start until smtp-sink has them all, and Halcyon's pid
 * (so `strace -f -c -e trace=write,writev -p PID` can count its writes).
 *
 *   node dist/bench/pipelined.js [sessions=10] [messages per session=200] [rcpts=2]
 *
 * Halcyon only; needs smtp-sink (Debian's postfix package). Asserts nothing.
 */
import net from 'node:net';
import { startHalcyon } from './halcyon.js';
import { installExitHandlers, pollUntil, sleep, stopAll } from './procs.js';
import { startSink } from './sink.js';

const S = Number(process.argv[2] ?? 10);
const N = Number(process.argv[3] ?? 200);
const R = Number(process.argv[4] ?? 2);
const CONTENT = `Subject: pipelined\r\n\r\n${`${'y'.repeat(76)}\r\n`.repeat(12)}.\r\n`;

/** Resolves once `count` complete replies (a "NNN " line each) arrived since the last call. */
function replies(sock: net.Socket): (count: number) => Promise<void> {
  let seen = 0;
  let tail = '';
  let waiter: { count: number; resolve: () => void } | undefined;
  const check = (): void => {
    if (waiter && seen >= waiter.count) {
      const w = waiter;
      waiter = undefined;
      seen -= w.count;
      w.resolve();
    }
  };
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => {
    const lines = (tail + d).split('\r\n');
    tail = lines.pop() ?? '';
    seen += lines.filter((l) => /^\d{3} /.test(l)).length;
    check();
  });
  return (count) => new Promise((resolve) => {
    waiter = { count, resolve };
    check();
  });
}

async function session(port: number): Promise<void> {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  const expect = replies(sock);
  await expect(1);
  sock.write('EHLO client.bench.test\r\n');
  await expect(1);
  const group = `MAIL FROM:<from@example.test>\r\n${Array.from({ length: R }, (_, j) => `RCPT TO:<to${j}@example.test>\r\n`).join('')}DATA\r\n`;
  for (let i = 0; i < N; i++) {
    sock.write(group);
    await expect(R + 2);
    sock.write(CONTENT);
    await expect(1);
  }
  sock.write('QUIT\r\n');
  await expect(1);
  sock.end();
}

async function main(): Promise<void> {
  installExitHandlers();
  const sink = await startSink();
  const h = await startHalcyon({ routeTo: sink.port });
  console.log(`halcyon pid ${h.pid}`);
  await sleep(Number(process.env.BENCH_WAIT_MS ?? 0));
  const c0 = h.cpuSeconds();
  const t0 = Date.now();
  await Promise.all(Array.from({ length: S }, () => session(h.port)));
  await pollUntil(() => sink.messages() >= S * N, Date.now() + 60_000, 10);
  const cpu = h.cpuSeconds() - c0;
  console.log(`${S * N} messages, ${R} recipients each, pipelined: ${((Date.now() - t0) / 1000).toFixed(1)} s, sink got ${sink.messages()}, CPU ${((cpu * 1000) / (S * N)).toFixed(2)} s per 1,000`);
}

try {
  await main();
} finally {
  await stopAll();
}

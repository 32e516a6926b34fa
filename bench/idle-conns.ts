/**
 * bench/idle-conns — holds many idle inbound SMTP connections open, for the
 * memory figure. Node cannot raise its own fd limit, so `holdIdle()` runs
 * this same file as a child through `bash -c 'ulimit -n 65536; exec node …'`;
 * the child opens the connections (a few hundred connects in flight at a
 * time), waits for each 220 greeting, prints `OPEN <ok> <failed>` and holds
 * them until its stdin closes. Bounded by a deadline.
 *
 * It sends nothing after connecting (an idle client) and measures nothing.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { trackChild } from './procs.js';

const SELF = fileURLToPath(import.meta.url);

export interface IdleHold {
  readonly open: number;
  readonly failed: number;
  release(): Promise<void>;
}

/** Opens `count` idle connections to 127.0.0.1:port from a child with a raised fd limit. */
export async function holdIdle(port: number, count: number, timeoutMs: number): Promise<IdleHold> {
  const child = spawn('/bin/bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, SELF, String(port), String(count), String(timeoutMs)],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const stop = trackChild('idle-conns', child);
  let out = '';
  child.stdout!.setEncoding('utf8');
  const line = await new Promise<string>((resolve) => {
    child.stdout!.on('data', (d: string) => {
      out += d;
      const m = /OPEN \d+ \d+/.exec(out);
      if (m) resolve(m[0]);
    });
    child.once('exit', () => resolve('OPEN 0 0'));
  });
  const [, ok, failed] = line.split(' ');
  return {
    open: Number(ok), failed: Number(failed),
    async release() {
      child.stdin!.end();
      await stop();
    },
  };
}

async function main(port: number, count: number, timeoutMs: number): Promise<void> {
  const sockets: net.Socket[] = [];
  let ok = 0;
  let failed = 0;
  let started = 0;
  const deadline = Date.now() + timeoutMs;
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    sockets.push(s);
    const t = setTimeout(() => { failed++; s.destroy(); resolve(); }, Math.max(1, deadline - Date.now()));
    s.once('data', (d: Buffer) => {
      clearTimeout(t);
      if (d.toString('latin1').startsWith('220')) ok++; else { failed++; s.destroy(); }
      resolve();
    });
    s.once('error', () => { clearTimeout(t); failed++; resolve(); });
    s.on('error', () => { /* a later reset is reported by the count only */ });
  });
  const lane = async (): Promise<void> => {
    while (started < count && Date.now() < deadline) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(200, count) }, lane));
  process.stdout.write(`OPEN ${ok} ${failed}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => {
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}

if (process.argv[1] === SELF) {
  void main(Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4] ?? 60_000));
}

/**
 * bench/sink — Postfix's test tools as the bench's load and next hop:
 * `smtp-sink` (the next hop of both MTAs; its running `sess= quit= mesg=`
 * counters, \r-separated on stdout with -c, tell how many messages arrived)
 * and `smtp-source` (the load generator; its exit marks the last 250).
 *
 * It does not interpret the figures; run.ts does. Both tools come with
 * Debian's postfix package.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort, greets, trackChild } from './procs.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';
export const SMTP_SOURCE = '/usr/sbin/smtp-source';

export const toolsPresent = (): boolean => existsSync(SMTP_SINK) && existsSync(SMTP_SOURCE);

export interface Sink {
  readonly port: number;
  /** Messages (DATA transactions) received so far. */
  messages(): number;
  sessions(): number;
  stop(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const port = await freePort();
  const child = spawn(SMTP_SINK, ['-u', 'nobody', '-c', `127.0.0.1:${port}`, '1024'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = trackChild('smtp-sink', child);
  let mesg = 0;
  let sess = 0;
  let tail = '';
  child.stdout!.setEncoding('latin1');
  child.stdout!.on('data', (d: string) => {
    tail += d;
    const parts = tail.split(/[\r\n]/);
    tail = parts.pop() ?? '';
    for (let i = parts.length - 1; i >= 0; i--) {
      const m = /sess=(\d+) quit=\d+ mesg=(\d+)/.exec(parts[i]!);
      if (m) { sess = Number(m[1]); mesg = Number(m[2]); break; }
    }
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  if (!(await greets(port, 10_000))) {
    await stop();
    throw new Error(`smtp-sink did not start on 127.0.0.1:${port}: ${err}`);
  }
  // greets() opened one session without mail; counts are what arrives after this baseline.
  const base = { sess: 0 };
  await new Promise((r) => setTimeout(r, 50));
  base.sess = sess;
  return { port, messages: () => mesg, sessions: () => sess - base.sess, stop };
}

export interface SourceLoad {
  readonly sessions: number;
  readonly messages: number;
  readonly size: number;
  readonly recipients: number;
}

export interface SourceResult {
  /** Seconds from spawn to exit (or to the budget). */
  readonly seconds: number;
  /** False when the budget ran out first (smtp-source was killed). */
  readonly finished: boolean;
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs smtp-source against 127.0.0.1:port, killed after budgetMs. */
export async function runSource(port: number, load: SourceLoad, budgetMs: number): Promise<SourceResult> {
  const args = ['-s', String(load.sessions), '-m', String(load.messages), '-l', String(load.size), '-r', String(load.recipients),
    '-f', 'from@example.test', '-t', 'to@example.test', `127.0.0.1:${port}`];
  const t0 = process.hrtime.bigint();
  const child = spawn(SMTP_SOURCE, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stop = trackChild('smtp-source', child);
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-4000); });
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, budgetMs);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await stop();
  return { seconds, finished: !timedOut && code === 0, code, stderr: err };
}

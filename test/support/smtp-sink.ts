/**
 * test/support/smtp-sink — Postfix's smtp-sink as a remote that keeps every
 * transaction: run with `-d`, it writes one file per message whose first
 * headers say who sent it (X-Client-Addr: the peer address, X-Helo-Args: the
 * EHLO name). `startSink()` runs it on 127.0.0.1:PORT, dumping into a
 * directory of its own; `dumps()` reads what arrived; `stop()` ends it and
 * removes the directory.
 *
 * `requireSink(t)` skips (or, with HALCYON_REQUIRE_INTEROP=1, fails) when
 * smtp-sink is not installed or we are not root (it must drop to `nobody`).
 * It accepts everything and relays nothing.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort, greets } from './postfix-instance.js';
import { available, type Skippable } from './unavailable.js';

export const SMTP_SINK = '/usr/sbin/smtp-sink';

export function requireSink(t: Skippable): boolean {
  const why = !existsSync(SMTP_SINK) ? `${SMTP_SINK} is not installed` : process.getuid?.() !== 0 ? 'smtp-sink -u nobody needs root' : undefined;
  return available(t, why === undefined ? undefined : `interop peer unavailable: ${why}`);
}

/** One message as smtp-sink dumped it. */
export interface SinkDump {
  readonly clientAddr: string;
  readonly helo: string;
}

export interface Sink {
  readonly port: number;
  /** Every complete dump so far (a file is complete once its headers and the end of the message are there). */
  dumps(): SinkDump[];
  stop(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-sink-'));
  chmodSync(dir, 0o777);
  const port = await freeLoopbackPort();
  const child = spawn(SMTP_SINK, ['-u', 'nobody', '-d', `${dir}/%M.`, `127.0.0.1:${port}`, '256'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (!(await greets(port, 10_000))) {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`smtp-sink did not greet on 127.0.0.1:${port}`);
  }
  const header = (text: string, name: string): string => new RegExp(`^${name}: (.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return {
    port,
    dumps: () => readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8'))
      .filter((text) => text.includes('X-Client-Addr:'))
      .map((text) => ({ clientAddr: header(text, 'X-Client-Addr'), helo: header(text, 'X-Helo-Args') })),
    async stop() {
      child.kill();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

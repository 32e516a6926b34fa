/**
 * log — the logger every layer receives: pino, JSON lines by default (one
 * object per event, greppable by queue id or address), or a compact
 * human-readable line per event for a terminal (`log_format = "pretty"`).
 * A JSON line's `time` is ISO 8601 UTC, or epoch milliseconds with
 * `[log] time = "epoch"`.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** "2026-11-28T01:02:03.456Z INFO  message accepted queue_id=… from=…" */
function prettyLine(json: string): string {
  const o = JSON.parse(json) as Record<string, unknown>;
  const { time, level, msg, pid: _pid, hostname: _h, ...rest } = o;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`).join(' ');
  return `${new Date(typeof time === 'number' ? time : String(time)).toISOString()} ${(LEVELS[Number(level)] ?? String(level)).padEnd(5)} ${String(msg ?? '')}${fields ? ` ${fields}` : ''}\n`;
}

/** `time` in a JSON line: ISO 8601 in UTC (`log.time = "iso"`, the default) or epoch milliseconds. */
export type LogTime = 'iso' | 'epoch';

export function createLogger(opts: { level: string; format: 'json' | 'pretty'; time?: LogTime; destination?: NodeJS.WritableStream }): Logger {
  const timestamp = (opts.time ?? 'iso') === 'iso' ? pino.stdTimeFunctions.isoTime : pino.stdTimeFunctions.epochTime;
  // Asynchronous by default: a synchronous write(2) per line costs every SMTP session a system call per
  // event. sonic-boom coalesces lines while a write is in flight; `flushLogs` drains it on shutdown.
  const out = opts.destination ?? pino.destination({ dest: 1, sync: false });
  if (opts.format === 'json') return pino({ level: opts.level, base: undefined, timestamp }, out as unknown as pino.DestinationStream);
  const pretty = new Writable({
    // One line at a time is fine here: pretty output is for a person at a terminal, not for load.
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) out.write(prettyLine(line));
      cb();
    },
  });
  return pino({ level: opts.level, base: undefined }, pretty);
}

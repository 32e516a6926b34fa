/**
 * bench/halcyon — spawns the compiled Halcyon (`node …/src/cli/main.js serve
 * --config FILE`) for the benchmarks, the way a user runs it: a fresh
 * data_dir, one loopback SMTP listener, the admin HTTP off, log_level warn,
 * default durability (Halcyon always fsyncs), and example.test routed to a
 * given loopback port; `[server] workers` from BENCH_HALCYON_WORKERS when
 * set (benchWorkers: the SMTP session workers, decision 0017). Started through `bash -c 'ulimit -n 65536; exec …'`
 * so the idle-connection test is not capped by the bench's own fd limit.
 *
 * It does not speak SMTP and cleans up only what it created (the child and
 * its data_dir), also when the bench dies (see procs.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDkimKey } from '../src/intake/dkim-keys.js';
import { cpuSeconds, freePort, rssKb, trackChild } from './procs.js';

/** The compiled CLI beside this compiled file's tree (…/bench → …/src/cli). */
export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface HalcyonOptions {
  /** Next hop for example.test. */
  readonly routeTo: number;
  /** smtp.max_connections and max_connections_per_ip (default: the schema's). */
  readonly maxConnections?: number;
  /** Sign example.test's mail with a fresh key of this algorithm (RSA keys are 2048 bits). */
  readonly dkim?: 'rsa-sha256' | 'ed25519-sha256';
  /** The queue in this PostgreSQL database (bench/cluster), as this node; default the SQLite queue in data_dir. */
  readonly postgres?: { readonly url: string; readonly node: string };
  /** Send every event to a webhook at this URL (bench/events). */
  readonly webhook?: string;
}

export interface BenchHalcyon {
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  rssKb(): number;
  /** User + system CPU seconds of the Halcyon process (its worker threads included) so far. */
  cpuSeconds(): number;
  stderr(): string;
  stop(): Promise<void>;
}

const q = (s: string): string => JSON.stringify(s);

/** BENCH_HALCYON_WORKERS ("auto" or a number): Halcyon's `[server] workers` in every bench that starts it; unset → the default. */
export function benchWorkers(): string | undefined {
  const w = process.env.BENCH_HALCYON_WORKERS;
  return w === undefined || w === '' ? undefined : w === 'auto' ? q('auto') : String(Number(w));
}

export async function startHalcyon(opts: HalcyonOptions): Promise<BenchHalcyon> {
  const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-bench-'));
  const port = await freePort();
  // A closed port for everything else (only DSNs go there): no DNS during a bench.
  const nowhere = await freePort();
  const toml = [
    'hostname = "halcyon.bench.test"',
    `data_dir = ${q(dataDir)}`,
    'log_level = "warn"',
    ...(opts.postgres ? [`node_id = ${q(opts.postgres.node)}`, '', '[queue]', 'backend = "postgres"', `url = ${q(opts.postgres.url)}`] : []),
    '',
    ...(benchWorkers() !== undefined ? ['[server]', `workers = ${benchWorkers()}`, ''] : []),
    '[smtp]',
    `listen = [${q(`127.0.0.1:${port}`)}]`,
    ...(opts.maxConnections ? [`max_connections = ${opts.maxConnections}`, `max_connections_per_ip = ${opts.maxConnections}`] : []),
    '',
    '[http]',
    'enabled = false',
    '',
    ...(opts.dkim ? ['[[dkim]]', 'domain = "example.test"', 'selector = "bench"', `key = ${q(join(dataDir, 'dkim.pem'))}`, `algorithm = ${q(opts.dkim)}`, ''] : []),
    ...(opts.webhook ? ['[[events.webhooks]]', 'name = "bench"', `url = ${q(opts.webhook)}`, 'secret = "bench"', ''] : []),
    // Every route is a loopback port: DANE has nothing to do, and its start-up DNSSEC self-test waits on the
    // machine's resolver (8 s here, where none answers), a large part of its start budget.
    '[delivery]',
    'dane = "off"',
    '',
    '[routes]',
    `"example.test" = ${q(`127.0.0.1:${opts.routeTo}`)}`,
    `"*" = ${q(`127.0.0.1:${nowhere}`)}`,
    '',
  ].join('\n');
  if (opts.dkim) writeFileSync(join(dataDir, 'dkim.pem'), generateDkimKey(opts.dkim).pem, { mode: 0o600 });
  const configFile = join(dataDir, 'halcyon.toml');
  writeFileSync(configFile, toml);
  // BENCH_NODE_ARGS: extra node flags for Halcyon only (e.g. --cpu-prof), set by whoever profiles it.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn('/bin/bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, ...nodeArgs, CLI, 'serve', '--config', configFile],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const untrack = trackChild('halcyon', child);
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => { err = (err + d).slice(-20_000); });
  const stop = async (): Promise<void> => {
    await untrack();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      // 60 s: a start takes 1–2 s on a quiet machine, and ten times that while others load it (load average 12 on 2 cores seen).
      const timer = setTimeout(() => reject(new Error(`halcyon did not say "serving" within 60 s: ${err}`)), 60_000);
      const onData = (): void => {
        if (!/serving/.test(err)) return;
        clearTimeout(timer);
        resolve();
      };
      child.stderr!.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`halcyon exited before serving (code ${code}, signal ${signal}): ${err}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, pid: child.pid!, child, rssKb: () => rssKb(child.pid!), cpuSeconds: () => cpuSeconds(child.pid!), stderr: () => err, stop };
}

/**
 * test/support/halcyon — runs a real Halcyon for integration tests, two ways:
 *
 * - `startTestApp(overrides)`: in-process, through `startApp(parseConfig(…))`,
 *   with a temp data_dir, one SMTP listener on 127.0.0.1 port 0, the admin
 *   HTTP off, a silent logger and the scheduler not running (so what was
 *   queued stays put). Tests read the queue through `app.store`.
 * - `spawnHalcyon(configToml)`: the compiled CLI (`serve --config FILE`) as a
 *   child process, for crash tests and anything that must see the real binary.
 *   The SMTP port is found by binding port 0 first and written into the TOML.
 *
 * Plus `queueList(configFile)`, which runs `queue list --json` the way a user
 * would, and `firstAttempt(h, domain)`, which submits one message to an
 * in-process app and runs its scheduler by hand until the attempt is settled. Everything binds loopback only. It does not speak SMTP (see
 * smtp-client.ts) and cleans up only what it created.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { freeLoopbackPort } from './postfix-instance.js';
import { message, submit, waitUntil } from './postfix.js';
import { available } from './unavailable.js';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { startApp, type App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { MessageRow, RecipientRow } from '../../src/queue/model.js';

/** The compiled CLI, next to this compiled file's tree (.../test/support → .../src/cli). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export const TEST_HOSTNAME = 'mx.halcyon.test';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Merges section tables one level deep (so `{smtp:{max_recipients:3}}` keeps the listener); arrays replace. */
function merge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  return out;
}

export interface TestApp {
  readonly app: App;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the app and removes the data_dir. */
  stop(): Promise<void>;
}

export interface TestAppOptions {
  /** A logger to read what the app logs (default: silent). */
  readonly logger?: Logger;
  /**
   * Run the scheduler's loop (default false): inbound tests check what was
   * queued, and a running scheduler would deliver, bounce or remove it under them.
   */
  readonly scheduler?: boolean;
  /** The clock the app reads (a FakeClock's `now`); default real time. */
  readonly clock?: () => number;
}

/**
 * An in-process Halcyon. `overrides` are raw config (as TOML would give),
 * merged over the test base. The scheduler is manual unless asked for.
 */
export async function startTestApp(overrides: Obj = {}, opts: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-in-'));
  const base: Obj = {
    hostname: TEST_HOSTNAME,
    data_dir: dataDir,
    smtp: { listen: ['127.0.0.1:0'] },
    http: { enabled: false },
  };
  const cfg = parseConfig(merge(base, overrides));
  let app: App;
  try {
    app = await startApp(cfg, { logger: opts.logger ?? pino({ level: 'silent' }), manualScheduler: !opts.scheduler, ...(opts.clock ? { clock: opts.clock } : {}) });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const first = app.listening[0];
  if (!first) throw new Error('startTestApp: no listener bound');
  const port = Number(first.address.slice(first.address.lastIndexOf(':') + 1));
  return {
    app, port, dataDir,
    async stop() {
      await app.stop(2_000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Submits one message to r@DOMAIN (subject "to DOMAIN", or `subject`) and runs the scheduler of `h`
 * (started without its loop) until the recipient's first attempt is settled: its state then
 * ("delivered" once the message left the queue with its rows) and last reply's text.
 */
export async function firstAttempt(h: TestApp, domain: string, subject = `to ${domain}`): Promise<{ state: string; text: string }> {
  const id = await submit(h.port, { from: 'a@halcyon.test', to: [`r@${domain}`], content: message('a@halcyon.test', [`r@${domain}`], subject) });
  let row = (await h.app.store.recipients.getRecipients(id))[0];
  await waitUntil(async () => {
    await h.app.qmgr.runOnce();
    row = (await h.app.store.recipients.getRecipients(id))[0];
    return row === undefined || (row.state !== 'queued' && row.state !== 'inflight');
  }, `the attempt to ${domain}`);
  return { state: row?.state ?? 'delivered', text: row?.lastReply?.text ?? '' };
}

/** A loopback port that was free a moment ago (bind 0, read, close). */
export const freePort = (): Promise<number> => freeLoopbackPort();

export interface SpawnedHalcyon {
  readonly port: number;
  readonly child: ChildProcess;
  readonly dataDir: string;
  readonly configFile: string;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /** The admin HTTP port, when spawned with `http: true`. */
  readonly httpPort?: number;
  /** Everything the child wrote to stdout (its JSON log lines) so far; "" unless spawned with `captureStdout: true`. */
  stdout(): string;
  /** Sends the signal and resolves when the child has exited. */
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnOptions {
  /** Reuse a data_dir (a restart); default a fresh temp dir. */
  readonly dataDir?: string;
  /** How long to wait for "serving" (default 60 s: a bound, not a timing: under a loaded full suite a start took over 15 s). */
  readonly readyTimeoutMs?: number;
  /** Enable the admin HTTP listener on a free loopback port (`httpPort`). */
  readonly http?: boolean;
  /** Pipe the child's stdout (log lines) for `stdout()`. */
  readonly captureStdout?: boolean;
  /** Reuse this SMTP port (a restart that clients reach at the same address). */
  readonly port?: number;
  /** Run this program (the built bin, or a link to it) instead of `process.execPath CLI`. */
  readonly program?: string;
  /** The child's environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Spawns `node main.js serve --config FILE`. `configToml` is merged under the
 * test base (hostname, data_dir, the SMTP port, http off, log_level error)
 * and must not set smtp.listen. Resolves once stderr says "serving".
 */
export async function spawnHalcyon(configToml = '', opts: SpawnOptions = {}): Promise<SpawnedHalcyon> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'halcyon-child-'));
  // freePort's port is free when asked, not when the child binds it: another test file running
  // at the same time can take it in between. A port we chose is chosen again; one the test gave is not.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(configToml, { ...opts, dataDir });
    } catch (err) {
      const taken = err instanceof Error && /EADDRINUSE/.test(err.message);
      if (!taken || attempt === 3 || (opts.port !== undefined && !opts.http)) throw err;
    }
  }
}

async function spawnOnce(configToml: string, opts: SpawnOptions & { readonly dataDir: string }): Promise<SpawnedHalcyon> {
  const dataDir = opts.dataDir;
  const port = opts.port ?? await freePort();
  const httpPort = opts.http ? await freePort() : undefined;
  const raw = merge(merge({ hostname: TEST_HOSTNAME, log_level: 'error', http: { enabled: false } }, parseToml(configToml) as Obj), {
    data_dir: dataDir,
    smtp: { listen: [`127.0.0.1:${port}`] },
    ...(httpPort ? { http: { enabled: true, listen: `127.0.0.1:${httpPort}` } } : {}),
  });
  const configFile = join(dataDir, `halcyon-${port}.toml`);
  writeFileSync(configFile, stringifyToml(raw));
  const argv = [...(opts.program ? [] : [CLI]), 'serve', '--config', configFile];
  const child = spawn(opts.program ?? process.execPath, argv, { stdio: ['ignore', opts.captureStdout ? 'pipe' : 'ignore', 'pipe'], env: opts.env ?? process.env });
  let err = '';
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`halcyon did not say "serving" within ${opts.readyTimeoutMs ?? 60_000} ms: ${err}`));
    }, opts.readyTimeoutMs ?? 60_000);
    const onData = () => {
      if (!/serving/.test(err)) return;
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      resolve();
    };
    child.stderr!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`halcyon exited before serving (code ${code}, signal ${signal}): ${err}`));
    });
  });
  return {
    port, child, dataDir, configFile, httpPort,
    stderr: () => err,
    stdout: () => out,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface QueueEntry {
  readonly message: MessageRow;
  readonly recipients: RecipientRow[];
}

/** `halcyon queue list --json --config FILE`, parsed. */
export function queueList(configFile: string): Promise<QueueEntry[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'queue', 'list', '--json', '--config', configFile], { maxBuffer: 256 * 1024 * 1024, timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`queue list failed: ${error.message} ${stderr}`));
        try {
          resolve(JSON.parse(stdout) as QueueEntry[]);
        } catch (e) {
          reject(new Error(`queue list printed no JSON: ${(e as Error).message}: ${stdout.slice(0, 200)}`));
        }
      });
  });
}

/**
 * Whether an interop tool is present. When absent, the test is skipped with
 * the reason, or fails when HALCYON_REQUIRE_INTEROP=1 (CI installs the tools,
 * so a missing one there is a broken CI, not a reason to pass).
 */
export function haveTool(t: { skip(message?: string): void }, present: boolean, name: string): boolean {
  return available(t, present ? undefined : `${name} not installed`);
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the compiled CLI with `args` (argv0 may be replaced: `argv0Path` runs
 * a symlink to main.js, e.g. one named "sendmail"), feeding `input` on stdin.
 */
export function runCli(args: readonly string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number; script?: string; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [opts.script ?? CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`halcyon ${args.join(' ')} did not finish: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => { /* the command may exit without reading stdin */ });
    child.stdin.end(opts.input ?? '');
  });
}

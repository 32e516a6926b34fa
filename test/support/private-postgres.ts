/**
 * test/support/private-postgres — a PostgreSQL server of the test's own, to
 * stop and start under running Halcyon nodes: `initdb` into a temp dir, then
 * `postgres` on a free 127.0.0.1 port with its socket in that dir (`-k`),
 * through `pg_ctl`. The machine's shared server (127.0.0.1:5432, the one
 * test/support/postgres uses) is never touched.
 *
 * initdb refuses to run as root: when the test runs as root, every server
 * command runs as the `postgres` user (`runuser`), which owns the temp dir.
 * `privatePgUnavailable()` says why a server cannot be made here (no
 * binaries under /usr/lib/postgresql/<version>/bin or PG_BINDIR, root without
 * a postgres user), so a test can skip — unless HALCYON_REQUIRE_INTEROP=1,
 * where it throws. Asserts nothing; `destroy()` stops the server and removes
 * the dir, and a process that exits first stops it too.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './halcyon.js';

const run = promisify(execFile);

/** The newest PostgreSQL's bin dir holding initdb, pg_ctl and postgres (PG_BINDIR overrides). */
function binDir(): string | undefined {
  const has = (d: string) => ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(d, b)));
  if (process.env.PG_BINDIR) return has(process.env.PG_BINDIR) ? process.env.PG_BINDIR : undefined;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, 'bin')).find(has);
}

/** The postgres user's uid and gid, when this process is root (else undefined: commands run as ourselves). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** Undefined when a private server can be made here; else why not (and under HALCYON_REQUIRE_INTEROP=1 it throws). */
export function privatePgUnavailable(): string | undefined {
  let why: string | undefined;
  if (binDir() === undefined) why = 'no PostgreSQL server binaries (initdb, pg_ctl, postgres) under /usr/lib/postgresql/*/bin or PG_BINDIR';
  else {
    try {
      runAs();
    } catch {
      why = 'running as root, and there is no postgres user to run the server as';
    }
  }
  if (why !== undefined && process.env.HALCYON_REQUIRE_INTEROP === '1') throw new Error(`${why}, and HALCYON_REQUIRE_INTEROP=1`);
  return why;
}

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  readonly port: number;
  /** Stops the server (`pg_ctl stop -m MODE`, waiting until it is down). */
  stop(mode: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port and data (waiting until it accepts connections). */
  start(): Promise<void>;
  /** The server's log so far. */
  log(): string;
  /** Stops it if running and removes its files. */
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  if (!bin) throw new Error('private-postgres: no server binaries');
  const owner = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const argv = (cmd: string, args: string[]): [string, string[]] =>
    owner ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
  const pgRun = async (cmd: string, args: string[]) => {
    const [file, a] = argv(cmd, args);
    await run(file, a, { timeout: 60_000 });
  };
  const port = await freePort();
  const serverOptions = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=60 -c shared_buffers=16MB`;
  let running = false;
  const stopSync = () => {
    if (!running) return;
    const [file, a] = argv('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    try { execFileSync(file, a, { stdio: 'ignore', timeout: 30_000 }); } catch { /* already down */ }
  };
  // A test that dies without its after() hooks must not leave a server behind.
  process.once('exit', stopSync);

  const pg: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop(mode) {
      await pgRun('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
      running = false;
    },
    async start() {
      await pgRun('pg_ctl', ['-D', data, '-l', logFile, '-o', serverOptions, '-w', '-t', '60', 'start']);
      running = true;
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    async destroy() {
      process.removeListener('exit', stopSync);
      if (running) await pg.stop('immediate').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await pgRun('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C', '--no-instructions']);
    await pg.start();
  } catch (err) {
    await pg.destroy();
    throw new Error(`private-postgres: cannot start a server: ${(err as Error).message}\n${pg.log()}`);
  }
  return pg;
}

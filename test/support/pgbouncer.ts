/**
 * test/support/pgbouncer — a private PgBouncer (Debian's /usr/sbin/pgbouncer,
 * or PGBOUNCER) on a free 127.0.0.1 port in front of the machine's
 * PostgreSQL (127.0.0.1:5432, or PG_URL's host and port), in TRANSACTION
 * pooling mode: each transaction of a client may run on another server
 * connection. Two server connections are kept open (min_pool_size) and used
 * in turn (server_round_robin), so two transactions of one client in a row
 * run on two different server connections — what breaks a named prepared
 * statement under PgBouncer before 1.21. `ignore_startup_parameters =
 * options` lets Halcyon's startup packet (synchronous_commit=on) through.
 *
 * PgBouncer refuses to run as root: as root it is started with `-u postgres`,
 * which owns its temp dir. `pgbouncerUnavailable()` says why one cannot be
 * started here, so a test can skip — unless HALCYON_REQUIRE_INTEROP=1, where
 * it throws. Asserts nothing; `stop()` ends it and removes its files.
 */
import { spawn, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './halcyon.js';

const BIN = process.env.PGBOUNCER ?? '/usr/sbin/pgbouncer';
const SERVER = new URL(process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432');

/** Undefined when PgBouncer can be started here; else why not (and under HALCYON_REQUIRE_INTEROP=1 it throws). */
export function pgbouncerUnavailable(): string | undefined {
  const why = existsSync(BIN) ? undefined : `no PgBouncer at ${BIN} (Debian's pgbouncer package, or PGBOUNCER)`;
  if (why !== undefined && process.env.HALCYON_REQUIRE_INTEROP === '1') throw new Error(`${why}, and HALCYON_REQUIRE_INTEROP=1`);
  return why;
}

export interface PrivatePgBouncer {
  /** postgres://postgres@127.0.0.1:PORT/<database>: the same database through PgBouncer. */
  urlFor(database: string): string;
  /** PgBouncer's log so far. */
  log(): string;
  stop(): Promise<void>;
}

const accepts = (port: number): Promise<boolean> => new Promise((resolve) => {
  const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

export async function startPgBouncer(): Promise<PrivatePgBouncer> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-pgbouncer-'));
  const port = await freePort();
  const logFile = join(dir, 'pgbouncer.log');
  writeFileSync(join(dir, 'users.txt'), '"postgres" ""\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `* = host=${SERVER.hostname} port=${SERVER.port || '5432'}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1', `listen_port = ${port}`, 'unix_socket_dir =',
    'auth_type = trust', `auth_file = ${join(dir, 'users.txt')}`,
    'pool_mode = transaction', 'default_pool_size = 2', 'min_pool_size = 2', 'server_round_robin = 1',
    'max_client_conn = 100', 'ignore_startup_parameters = options',
    `logfile = ${logFile}`, `pidfile = ${join(dir, 'pgbouncer.pid')}`, '',
  ].join('\n'));
  const root = process.getuid?.() === 0;
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    for (const f of ['users.txt', 'pgbouncer.ini']) chownSync(join(dir, f), uid, gid);
  }
  const child = spawn(BIN, [...(root ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const kill = () => { child.kill('SIGKILL'); };
  process.once('exit', kill);
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const stop = async (): Promise<void> => {
    process.removeListener('exit', kill);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100 && !(await accepts(port)); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!(await accepts(port))) {
    const text = log();
    await stop();
    throw new Error(`pgbouncer did not start on 127.0.0.1:${port}: ${text}`);
  }
  return { urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`, log, stop };
}

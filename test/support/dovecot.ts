/**
 * test/support/dovecot — Debian's real Dovecot LMTP server (dovecot-lmtpd)
 * as a private test peer, after /work/shared/notes/dovecot-and-dkimpy-as-test-peers.md.
 *
 * `startDovecot()` writes a private dovecot.conf in a temp dir (its own
 * base_dir, state_dir and log; protocols = lmtp; one loopback TCP listener on
 * a free port and one Unix socket `DIR/run/lmtp`; users from a passwd-file
 * under one domain, mail_location = Maildir under DIR/mail; the quota plugin
 * with a per-user storage rule), starts `dovecot -c FILE` with its output to
 * a file (it forks, and the daemon keeps the parent's stdout: a pipe would
 * never close) and waits until the TCP listener greets. `setQuota()` rewrites
 * the passwd-file and waits until Dovecot's userdb (`doveadm user`) answers
 * with the new rule; `maildir(user)`
 * lists what was delivered; `stop()` runs `dovecot -c FILE stop`, waits for
 * the port to close and removes the dir.
 *
 * `requireDovecot(t)` skips with the reason when Dovecot is not installed (or
 * we are not root), and fails instead under HALCYON_REQUIRE_INTEROP=1.
 *
 * It does not touch the system instance, relay anywhere, or speak LMTP itself.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort, portClosed } from './postfix-instance.js';
import { available } from './unavailable.js';

export const DOVECOT = '/usr/sbin/dovecot';
export const DOVECOT_LMTP = '/usr/lib/dovecot/lmtp';
const DOVEADM = '/usr/bin/doveadm';

export function requireDovecot(t: { skip(message?: string): void }): boolean {
  let why: string | undefined;
  if (!existsSync(DOVECOT)) why = `${DOVECOT} is not installed (dovecot-core)`;
  else if (!existsSync(DOVECOT_LMTP)) why = `${DOVECOT_LMTP} is not installed (dovecot-lmtpd)`;
  else if (userInfo().uid !== 0) why = 'a private Dovecot instance here needs root';
  return available(t, why === undefined ? undefined : `interop peer unavailable: ${why}`);
}

export interface DovecotOptions {
  /** Local parts of the mailboxes under `domain`. */
  readonly users: readonly string[];
  readonly domain: string;
  /** user → storage limit as Dovecot writes it ("1K"); the others are unlimited. */
  readonly quota?: Readonly<Record<string, string>>;
  /** lmtp_rcpt_check_quota: refuse a full mailbox at RCPT instead of after DATA. */
  readonly rcptCheckQuota?: boolean;
  /** quota_full_tempfail: a full mailbox is a temporary (4xx) failure. */
  readonly quotaTempfail?: boolean;
}

export interface DovecotPeer {
  readonly port: number;
  /** The LMTP Unix socket. */
  readonly socket: string;
  readonly dir: string;
  /** Files delivered to user@domain (Maildir new/ and cur/). */
  maildir(user: string): string[];
  /** Dovecot's own log so far. */
  log(): string;
  /** Changes one user's quota rule ("1M"; undefined = unlimited); resolves once Dovecot's userdb answers with it. */
  setQuota(user: string, limit: string | undefined): Promise<void>;
  stop(): Promise<void>;
}

const run = (file: string, args: string[]): Promise<void> =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 15_000 }, (err, _out, stderr) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`)) : resolve()));
  });

/** Resolves once an LMTP 220 greeting is read on 127.0.0.1:port (false after timeoutMs). */
async function lmtpGreets(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const timer = setTimeout(() => { s.destroy(); resolve(false); }, 2000);
      s.once('data', (d: Buffer) => { clearTimeout(timer); s.end('QUIT\r\n'); resolve(d.toString().startsWith('220')); });
      s.once('error', () => { clearTimeout(timer); resolve(false); });
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function nobodyIds(): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'nobody') return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return { uid: 65534, gid: 65534 };
}

export async function startDovecot(opts: DovecotOptions): Promise<DovecotPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-dovecot-'));
  // Dovecot's auth and lmtp processes run as nobody and must reach the users file.
  chmodSync(dir, 0o755);
  const port = await freeLoopbackPort();
  const { uid, gid } = nobodyIds();
  const mail = join(dir, 'mail');
  mkdirSync(mail);
  chownSync(mail, uid, gid);
  for (const sub of ['run', 'state']) mkdirSync(join(dir, sub));
  const usersFile = join(dir, 'users');
  const quota = new Map(Object.entries(opts.quota ?? {}));
  let version = 0;
  const writeUsers = (): void => {
    const lines = opts.users.map((u) => {
      const rule = quota.get(u);
      return `${u}@${opts.domain}:{PLAIN}x:${uid}:${gid}::::${rule ? `userdb_quota_rule=*:storage=${rule}` : ''}`;
    });
    writeFileSync(usersFile, `${lines.join('\n')}\n`);
    // Dovecot notices a change by size and whole-second mtime: give each version its own second.
    version++;
    const t = Math.floor(Date.now() / 1000) + version;
    utimesSync(usersFile, t, t);
  };
  writeUsers();
  const conf = join(dir, 'dovecot.conf');
  const logFile = join(dir, 'dovecot.log');
  writeFileSync(conf, `# private test instance (test/support/dovecot.ts)
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${logFile}
info_log_path = ${logFile}
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = nobody
default_internal_group = nogroup
default_login_user = nobody
first_valid_uid = 0
mail_location = maildir:${mail}/%u
passdb {
  driver = passwd-file
  args = ${usersFile}
}
userdb {
  driver = passwd-file
  args = ${usersFile}
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
  unix_listener lmtp {
    mode = 0666
  }
}
mail_plugins = quota
plugin {
  quota = maildir:User quota
}
lmtp_rcpt_check_quota = ${opts.rcptCheckQuota ? 'yes' : 'no'}
quota_full_tempfail = ${opts.quotaTempfail ? 'yes' : 'no'}
`);
  // Output to a file, not a pipe: dovecot forks and the daemon keeps these descriptors.
  const out = openSync(join(dir, 'start.out'), 'w');
  try {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(DOVECOT, ['-c', conf], { stdio: ['ignore', out, out] });
      child.once('error', () => resolve(-1));
      child.once('exit', (c) => resolve(c));
    });
    if (code !== 0) {
      const why = `${readFileSync(join(dir, 'start.out'), 'utf8')}${readLog(dir)}`;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`dovecot -c ${conf} exited ${code}: ${why}`);
    }
  } finally {
    closeSync(out);
  }
  const stop = async (): Promise<void> => {
    await run(DOVECOT, ['-c', conf, 'stop']).catch(() => undefined);
    await portClosed(port, 10_000);
    rmSync(dir, { recursive: true, force: true });
  };
  if (!(await lmtpGreets(port, 15_000))) {
    const log = readLog(dir);
    await stop();
    throw new Error(`private Dovecot did not greet on 127.0.0.1:${port}:\n${log}`);
  }
  return {
    port,
    socket: join(dir, 'run', 'lmtp'),
    dir,
    maildir(user) {
      const files: string[] = [];
      for (const sub of ['new', 'cur']) {
        const p = join(mail, `${user}@${opts.domain}`, sub);
        if (existsSync(p)) files.push(...readdirSync(p).map((f) => join(p, f)));
      }
      return files;
    },
    log: () => readLog(dir),
    async setQuota(user, limit) {
      if (limit === undefined) quota.delete(user);
      else quota.set(user, limit);
      writeUsers();
      // Dovecot re-reads a changed passwd-file at most about once a second: ask its userdb until it agrees.
      const want = limit === undefined ? '' : `*:storage=${limit}`;
      const deadline = Date.now() + 10_000;
      for (;;) {
        const rule = await userdbField(conf, `${user}@${opts.domain}`, 'quota_rule');
        if (rule === want) return;
        if (Date.now() > deadline) throw new Error(`Dovecot still has quota_rule ${JSON.stringify(rule)} for ${user}, want ${JSON.stringify(want)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop,
  };
}

function userdbField(conf: string, user: string, field: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(DOVEADM, ['-c', conf, 'user', '-f', field, user], { timeout: 10_000 }, (err, out, stderr) =>
      (err ? reject(new Error(`doveadm user ${user}: ${stderr || err.message}`)) : resolve(out.trim())));
  });
}

function readLog(dir: string): string {
  const p = join(dir, 'dovecot.log');
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}

/**
 * test/support/postfix-instance — the one place that knows how to run a
 * private Debian Postfix (after /work/shared/notes/postfix-as-a-test-peer.md),
 * shared by the interop test peer (test/support/postfix.ts) and the bench
 * (bench/postfix.ts), plus the small loopback helpers both need: a free
 * port, "does it greet 220", "is the port closed".
 *
 * `makePostfixDirs()` creates a fresh temp config dir (queue, data and mail
 * dirs owned as Postfix needs). `configurePostfix()` writes main.cf from a
 * Record of settings the caller built (start from `baseMainCf()`; the test
 * peer adds virtual mailboxes and an access table, the bench a relay via
 * transport_maps and process limits), copies master.cf with chroot off and
 * the smtp/inet service replaced by one loopback smtpd, copies the dynamic
 * maps, and returns a handle whose start()/stop() run `postfix -c DIR
 * start|stop` and wait for the port to greet / close. Each instance has its
 * own queue_directory and data_directory, so several can run at once.
 *
 * It does not decide what the instance does with mail (the caller's
 * settings do), register cleanup hooks (the bench tracks the handle), skip
 * tests, or touch the system instance beyond reading /etc/postfix's
 * master.cf and dynamic maps. Needs root.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const POSTFIX = '/usr/sbin/postfix';
export const POSTCONF = '/usr/sbin/postconf';

export class PostfixStartError extends Error {
  readonly code = 'ERR_POSTFIX_START';
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The postfix user's uid/gid from /etc/passwd (nobody when absent, so config still writes). */
export function postfixIds(): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postfix') return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return { uid: 65534, gid: 65534 };
}

/** A loopback port that was free a moment ago (bind 0, read, close). */
export function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true once a 220 greeting is read from 127.0.0.1:port, false if not within timeoutMs. */
export async function greets(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const t = setTimeout(() => { s.destroy(); resolve(false); }, 2000);
      s.once('data', (d: Buffer) => { clearTimeout(t); s.end('QUIT\r\n'); resolve(d.toString().startsWith('220')); });
      s.once('error', () => { clearTimeout(t); resolve(false); });
    });
    if (ok) return true;
    await pause(100);
  }
  return false;
}

/** Resolves true once nothing accepts on 127.0.0.1:port, false if still open after timeoutMs. */
export async function portClosed(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (!open) return true;
    await pause(100);
  }
  return false;
}

function run(cmd: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

/** An inline: table; values with spaces need the inner braces (postmap -q checks it). */
export const inlineTable = (entries: readonly (readonly [string, string])[]): string =>
  `inline:{ ${entries.map(([k, v]) => (/\s/.test(v) ? `{ ${k}=${v} }` : `${k}=${v}`)).join(', ')} }`;

export interface PostfixDirs {
  readonly dir: string;
  readonly queue: string;
  readonly data: string;
  readonly mail: string;
  readonly maillog: string;
  readonly uid: number;
  readonly gid: number;
}

/** A fresh temp config dir with queue/, data/ and mail/ (the last two owned by postfix). */
export function makePostfixDirs(prefix: string): PostfixDirs {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // mkdtemp makes it 0700: the postfix user must be able to reach its data and mail dirs inside.
  chmodSync(dir, 0o755);
  const { uid, gid } = postfixIds();
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  const mail = join(dir, 'mail');
  for (const d of [queue, data, mail]) mkdirSync(d, { recursive: true });
  chownSync(data, uid, gid);
  chownSync(mail, uid, gid);
  return { dir, queue, data, mail, maillog: join(dir, 'maillog'), uid, gid };
}

/**
 * The settings every private instance shares: its own dirs and maillog,
 * loopback IPv4 only, no local domains, no TLS, no aliases, no notices.
 * Callers spread it and add what makes their role.
 */
export function baseMainCf(d: PostfixDirs, hostname: string, domain: string): Record<string, string> {
  return {
    compatibility_level: '3.6',
    queue_directory: d.queue,
    data_directory: d.data,
    meta_directory: '/etc/postfix',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    myhostname: hostname,
    mydomain: domain,
    myorigin: '$myhostname',
    mydestination: '',
    maillog_file: d.maillog,
    maillog_file_prefixes: `/var, /dev/stdout, /tmp, ${d.dir}`,
    notify_classes: '',
    biff: 'no',
    smtpd_tls_security_level: 'none',
    smtp_tls_security_level: 'none',
    alias_maps: '',
    alias_database: '',
  };
}

/** Virtual Maildirs `mail/<user>/` for each user@domain, delivered as the postfix user. */
export function virtualMailboxSettings(d: PostfixDirs, domain: string, users: readonly string[]): Record<string, string> {
  return {
    virtual_mailbox_domains: domain,
    virtual_mailbox_base: d.mail,
    virtual_mailbox_maps: inlineTable(users.map((u) => [`${u}@${domain}`, `${u}/`] as const)),
    virtual_uid_maps: `static:${d.uid}`,
    virtual_gid_maps: `static:${d.gid}`,
    virtual_minimum_uid: String(Math.min(d.uid, 100)),
  };
}

/** smtpd_recipient_restrictions: the access table (address → reply) first, then relay rules. */
export function recipientRestrictions(accessTable: Readonly<Record<string, string>> = {}): string {
  const access = Object.entries(accessTable);
  return [...(access.length ? [`check_recipient_access ${inlineTable(access)}`] : []), 'permit_mynetworks', 'reject_unauth_destination'].join(', ');
}

export interface PostfixServiceOptions {
  /** maxproc of the loopback smtpd service (default "-", Postfix's default_process_limit). */
  readonly smtpdProcessLimit?: number;
  /** Further `postconf -c DIR …` argument lists applied after the service edits (e.g. ['-F', 'smtp/unix/process_limit = 200']). */
  readonly postconf?: readonly (readonly string[])[];
}

export interface PrivatePostfix {
  readonly dirs: PostfixDirs;
  readonly port: number;
  /** The whole maillog so far ('' before the first line). */
  maillog(): string;
  /** `postfix start` and wait (15 s) for a 220; on failure aborts, removes the dir and throws PostfixStartError. */
  start(): Promise<void>;
  /** `postfix stop`, wait (10 s) for the port to close (else abort), remove the dir. Idempotent. */
  stop(): Promise<void>;
  /** Best-effort synchronous stop, for a process 'exit' handler. */
  stopSync(): void;
}

/**
 * Writes main.cf (`mainCf`, in order), master.cf (system copy, chroot = n,
 * smtp/inet replaced by 127.0.0.1:PORT smtpd) and the dynamic maps into
 * dirs.dir. Nothing runs until start(). On a postconf failure the dir is
 * removed and PostfixStartError thrown.
 */
export async function configurePostfix(dirs: PostfixDirs, port: number, mainCf: Readonly<Record<string, string>>,
  opts: PostfixServiceOptions = {}): Promise<PrivatePostfix> {
  const { dir } = dirs;
  writeFileSync(join(dir, 'main.cf'), `${Object.entries(mainCf).map(([k, v]) => (v === '' ? `${k} =` : `${k} = ${v}`)).join('\n')}\n`);
  copyFileSync('/etc/postfix/master.cf', join(dir, 'master.cf'));
  if (existsSync('/etc/postfix/dynamicmaps.cf')) copyFileSync('/etc/postfix/dynamicmaps.cf', join(dir, 'dynamicmaps.cf'));
  if (existsSync('/etc/postfix/dynamicmaps.cf.d')) cpSync('/etc/postfix/dynamicmaps.cf.d', join(dir, 'dynamicmaps.cf.d'), { recursive: true });

  const steps: (readonly string[])[] = [
    ['-F', '*/*/chroot = n'],
    ['-MX', 'smtp/inet'],
    ['-M', `127.0.0.1:${port}/inet = 127.0.0.1:${port} inet n - n - ${opts.smtpdProcessLimit ?? '-'} smtpd`],
    ...(opts.postconf ?? []),
  ];
  for (const args of steps) {
    const r = await run(POSTCONF, ['-c', dir, ...args]);
    if (r.code !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new PostfixStartError(`postconf -c ${dir} ${args.join(' ')} failed: ${r.out}`);
    }
  }

  const maillog = (): string => (existsSync(dirs.maillog) ? readFileSync(dirs.maillog, 'utf8') : '');
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await run(POSTFIX, ['-c', dir, 'stop']);
    // The master lingers a moment after "stop"; wait until the port is free, else force.
    if (!(await portClosed(port, 10_000))) await run(POSTFIX, ['-c', dir, 'abort']);
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    dirs,
    port,
    maillog,
    async start() {
      const started = await run(POSTFIX, ['-c', dir, 'start']);
      if (started.code === 0 && (await greets(port, 15_000))) return;
      const log = maillog();
      stopped = true;
      await run(POSTFIX, ['-c', dir, 'abort']);
      rmSync(dir, { recursive: true, force: true });
      throw new PostfixStartError(`postfix -c ${dir} start failed (${started.code}): ${started.out}\n--- maillog ---\n${log}`);
    },
    stop,
    stopSync() {
      if (stopped) return;
      try {
        execFileSync(POSTFIX, ['-c', dir, 'stop'], { stdio: 'ignore', timeout: 30_000 });
      } catch { /* exiting anyway; nothing better to do */ }
    },
  };
}

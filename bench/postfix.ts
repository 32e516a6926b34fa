/**
 * bench/postfix — a private Debian Postfix instance for the benchmarks (after
 * /work/shared/notes/postfix-as-a-test-peer.md; the approach is copied from
 * test/support/postfix.ts, which the bench must not import).
 *
 * Two roles: a relay under test (`relayTo` set: everything for example.test
 * goes to smtp:[127.0.0.1]:PORT, default durability, raised process limits)
 * and a remote peer (virtual Maildirs for example.test, with an optional
 * recipient limit and access-table replies). Listens on 127.0.0.1 only,
 * never reads DNS for delivery, never touches the system instance. Nothing
 * else leaves it (default_transport = error). Needs root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, greets, portClosed, processTree, pssKb, rssKb, sh, sleep, track } from './procs.js';

export const POSTFIX = '/usr/sbin/postfix';
export const POSTCONF = '/usr/sbin/postconf';

export class PostfixStartError extends Error {
  readonly code = 'ERR_BENCH_POSTFIX_START';
}

export interface PostfixOptions {
  /** The next hop for example.test (the relay role). */
  readonly relayTo?: number;
  /** Process limit of the smtpd listener and the smtp client (default 100). */
  readonly maxproc?: number;
  readonly recipientLimit?: number;
  /** address → full reply, e.g. { 'r0@example.test': '552 5.2.2 Mailbox full' }. */
  readonly accessTable?: Readonly<Record<string, string>>;
  /** Local parts with a Maildir under example.test (the peer role). */
  readonly mailboxes?: readonly string[];
}

export interface BenchPostfix {
  readonly port: number;
  readonly dir: string;
  maillog(): string;
  /** Transactions the instance queued: queue id → (sender, nrcpt), from its qmgr lines. */
  transactions(): { id: string; from: string; nrcpt: number }[];
  /** RSS and PSS (KiB) summed over the master and all its descendants. */
  rssKb(): { total: number; pss: number; processes: number };
  stop(): Promise<void>;
}

const DOMAIN = 'example.test';

const inline = (entries: readonly [string, string][]): string =>
  `inline:{ ${entries.map(([k, v]) => (/\s/.test(v) ? `{ ${k}=${v} }` : `${k}=${v}`)).join(', ')} }`;

function postfixIds(): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postfix') return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return { uid: 65534, gid: 65534 };
}

export function postfixVersion(): string {
  return sh(POSTCONF, ['-h', 'mail_version']).trim() || 'unknown';
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<BenchPostfix> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-bench-postfix-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const { uid, gid } = postfixIds();
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  const mail = join(dir, 'mail');
  for (const d of [queue, data, mail]) mkdirSync(d, { recursive: true });
  chownSync(data, uid, gid);
  chownSync(mail, uid, gid);
  const maxproc = opts.maxproc ?? 100;

  const access = Object.entries(opts.accessTable ?? {});
  const restrictions = [...(access.length ? [`check_recipient_access ${inline(access)}`] : []), 'permit_mynetworks', 'reject_unauth_destination'];
  const role = opts.relayTo !== undefined
    ? [`relay_domains = ${DOMAIN}`, `transport_maps = inline:{ ${DOMAIN}=smtp:[127.0.0.1]:${opts.relayTo} }`]
    : [
      `virtual_mailbox_domains = ${DOMAIN}`,
      `virtual_mailbox_base = ${mail}`,
      `virtual_mailbox_maps = ${inline((opts.mailboxes ?? []).map((u) => [`${u}@${DOMAIN}`, `${u}/`]))}`,
      `virtual_uid_maps = static:${uid}`,
      `virtual_gid_maps = static:${gid}`,
      `virtual_minimum_uid = ${Math.min(uid, 100)}`,
    ];
  const mainCf = [
    'compatibility_level = 3.6',
    `queue_directory = ${queue}`,
    `data_directory = ${data}`,
    'meta_directory = /etc/postfix',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    `myhostname = postfix-${port}.bench.test`,
    'mydomain = bench.test',
    'myorigin = $myhostname',
    'mydestination =',
    `maillog_file = ${join(dir, 'maillog')}`,
    `maillog_file_prefixes = /var, /dev/stdout, /tmp, ${dir}`,
    `default_process_limit = ${maxproc}`,
    ...role,
    `smtpd_recipient_limit = ${opts.recipientLimit ?? 1000}`,
    `smtpd_recipient_restrictions = ${restrictions.join(', ')}`,
    // Bounces and anything not for example.test stay here: no DNS, no network.
    'default_transport = error:bench relays only example.test',
    'disable_dns_lookups = yes',
    'notify_classes =',
    'biff = no',
    'smtpd_tls_security_level = none',
    'smtp_tls_security_level = none',
    'alias_maps =',
    'alias_database =',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'main.cf'), mainCf);
  copyFileSync('/etc/postfix/master.cf', join(dir, 'master.cf'));
  if (existsSync('/etc/postfix/dynamicmaps.cf')) copyFileSync('/etc/postfix/dynamicmaps.cf', join(dir, 'dynamicmaps.cf'));
  if (existsSync('/etc/postfix/dynamicmaps.cf.d')) cpSync('/etc/postfix/dynamicmaps.cf.d', join(dir, 'dynamicmaps.cf.d'), { recursive: true });

  const steps: (readonly string[])[] = [
    ['-c', dir, '-F', '*/*/chroot = n'],
    ['-c', dir, '-MX', 'smtp/inet'],
    ['-c', dir, '-M', `127.0.0.1:${port}/inet = 127.0.0.1:${port} inet n - n - ${maxproc} smtpd`],
    ['-c', dir, '-F', `smtp/unix/process_limit = ${maxproc}`],
  ];
  for (const args of steps) {
    try {
      execFileSync(POSTCONF, args, { stdio: 'pipe', timeout: 30_000 });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw new PostfixStartError(`postconf ${args.join(' ')} failed: ${(err as Error).message}`);
    }
  }
  const maillogPath = join(dir, 'maillog');
  const maillog = (): string => (existsSync(maillogPath) ? readFileSync(maillogPath, 'utf8') : '');
  const stopSync = (): void => {
    sh(POSTFIX, ['-c', dir, 'stop']);
  };
  const untrack = track(`postfix ${dir}`, async () => {
    sh(POSTFIX, ['-c', dir, 'stop']);
    // The master lingers a moment (defunct); wait until the port is free, then force.
    if (!(await portClosed(port, 10_000))) sh(POSTFIX, ['-c', dir, 'abort']);
    await sleep(200);
    rmSync(dir, { recursive: true, force: true });
  }, stopSync);

  let started = '';
  try {
    started = execFileSync(POSTFIX, ['-c', dir, 'start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (err) {
    started = (err as Error).message;
  }
  if (!(await greets(port, 15_000))) {
    const log = maillog();
    await untrack();
    throw new PostfixStartError(`postfix -c ${dir} start failed: ${started}\n--- maillog ---\n${log}`);
  }
  const masterPid = (): number => {
    try {
      return Number(readFileSync(join(queue, 'pid', 'master.pid'), 'utf8').trim());
    } catch {
      return 0;
    }
  };

  return {
    port,
    dir,
    maillog,
    transactions() {
      const out: { id: string; from: string; nrcpt: number }[] = [];
      for (const m of maillog().matchAll(/postfix\/qmgr\[\d+\]: ([0-9A-Za-z]+): from=<([^>]*)>, size=\d+, nrcpt=(\d+)/g)) {
        out.push({ id: m[1]!, from: m[2]!, nrcpt: Number(m[3]) });
      }
      return out;
    },
    rssKb() {
      const pid = masterPid();
      if (!pid) return { total: 0, pss: 0, processes: 0 };
      const pids = processTree(pid);
      return { total: pids.reduce((s, p) => s + rssKb(p), 0), pss: pids.reduce((s, p) => s + pssKb(p), 0), processes: pids.length };
    },
    stop: untrack,
  };
}

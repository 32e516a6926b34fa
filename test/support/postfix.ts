/**
 * test/support/postfix — Debian's real Postfix as a private test peer, for
 * interop tests of Halcyon's SMTP client (see
 * /work/shared/notes/postfix-as-a-test-peer.md, which this follows).
 *
 * `startPostfix()` writes a config dir under a fresh temp folder (its own
 * main.cf, master.cf copy, queue, data dir, maillog and virtual Maildirs),
 * listens on 127.0.0.1:PORT only, and can be told to enforce a recipient
 * limit and to answer chosen recipients from an access table (e.g.
 * `552 5.2.2 Mailbox full`). Every instance has its own queue_directory (so
 * its own master pid file) and data_directory (its own master.lock), so
 * several can run at once.
 *
 * `requirePeer(t, path)` decides what a missing peer means: a skip with the
 * reason on a laptop, a failure when HALCYON_REQUIRE_INTEROP=1 (CI installs
 * Postfix, so a missing one there is a broken CI, not a pass).
 *
 * It does not relay anywhere (default_transport = error), read DNS, or touch
 * the system instance in /etc/postfix beyond reading its master.cf and
 * dynamic maps. Needs root (postfix -c with a private dir, chown to postfix).
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { RawSmtpClient, queuedId } from './smtp-client.js';

export const POSTFIX = '/usr/sbin/postfix';
export const POSTCONF = '/usr/sbin/postconf';

/**
 * True when the peer at `path` is installed (and we can run it). Otherwise:
 * skips the test with a clear message, or throws when HALCYON_REQUIRE_INTEROP=1.
 */
export function requirePeer(t: { skip(message?: string): void }, path: string): boolean {
  let why: string | undefined;
  if (!existsSync(path)) why = `${path} is not installed`;
  else if (path === POSTFIX && userInfo().uid !== 0) why = 'a private Postfix instance needs root';
  if (why === undefined) return true;
  if (process.env.HALCYON_REQUIRE_INTEROP === '1') throw new Error(`interop peer unavailable (${why}) and HALCYON_REQUIRE_INTEROP=1`);
  t.skip(`interop peer unavailable: ${why}`);
  return false;
}

export interface PostfixOptions {
  /** smtpd_recipient_limit (Postfix answers 452 4.5.3 beyond it). */
  readonly recipientLimit?: number;
  /** address → full reply, e.g. { 'full@example.test': '552 5.2.2 Mailbox full' }. */
  readonly accessTable?: Readonly<Record<string, string>>;
  /** Local parts that get a Maildir under example.test (default a0..a9). */
  readonly virtualMailboxes?: readonly string[];
  /** Loopback port; default a free one. */
  readonly port?: number;
}

export interface PostfixPeer {
  readonly port: number;
  readonly dir: string;
  /** The whole maillog so far. */
  maillog(): string;
  /** Files delivered to user@example.test's Maildir (new/ and cur/). */
  maildir(user: string): string[];
  /** The transactions Postfix queued: queue id → nrcpt, from the qmgr lines. */
  transactions(): Map<string, number>;
  /** Waits (bounded) until the maillog satisfies pred. */
  waitLog(pred: (log: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export class PostfixStartError extends Error {
  readonly code = 'ERR_TEST_POSTFIX_START';
}

const DOMAIN = 'example.test';

function run(cmd: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

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

/** Resolves true once a 220 greeting is read from host:port, false if not within timeoutMs. */
async function greets(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      const t = setTimeout(() => { s.destroy(); resolve(false); }, 2000);
      s.once('data', (d: Buffer) => { clearTimeout(t); s.end('QUIT\r\n'); resolve(d.toString().startsWith('220')); });
      s.once('error', () => { clearTimeout(t); resolve(false); });
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

async function portClosed(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (!open) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** An inline: table; values with spaces need the inner braces (postmap -q checks it). */
const inline = (entries: readonly [string, string][]): string =>
  `inline:{ ${entries.map(([k, v]) => (/\s/.test(v) ? `{ ${k}=${v} }` : `${k}=${v}`)).join(', ')} }`;

function postfixIds(): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postfix') return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return { uid: 65534, gid: 65534 };
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<PostfixPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-postfix-'));
  // mkdtemp makes it 0700: the postfix user must be able to reach its data and mail dirs inside.
  chmodSync(dir, 0o755);
  const port = opts.port ?? await freeLoopbackPort();
  const { uid, gid } = postfixIds();
  const users = opts.virtualMailboxes ?? Array.from({ length: 10 }, (_, i) => `a${i}`);
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  const mail = join(dir, 'mail');
  for (const d of [queue, data, mail]) mkdirSync(d, { recursive: true });
  chownSync(data, uid, gid);
  chownSync(mail, uid, gid);

  const access = Object.entries(opts.accessTable ?? {});
  const restrictions = [...(access.length ? [`check_recipient_access ${inline(access)}`] : []), 'permit_mynetworks', 'reject_unauth_destination'];
  const mainCf = [
    'compatibility_level = 3.6',
    `queue_directory = ${queue}`,
    `data_directory = ${data}`,
    'meta_directory = /etc/postfix',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'myhostname = postfix-peer.test',
    'mydomain = postfix-peer.test',
    'myorigin = $myhostname',
    'mydestination =',
    `maillog_file = ${join(dir, 'maillog')}`,
    `maillog_file_prefixes = /var, /dev/stdout, /tmp, ${dir}`,
    'smtpd_banner = $myhostname ESMTP Postfix (test peer)',
    `virtual_mailbox_domains = ${DOMAIN}`,
    `virtual_mailbox_base = ${mail}`,
    `virtual_mailbox_maps = ${inline(users.map((u) => [`${u}@${DOMAIN}`, `${u}/`]))}`,
    `virtual_uid_maps = static:${uid}`,
    `virtual_gid_maps = static:${gid}`,
    `virtual_minimum_uid = ${Math.min(uid, 100)}`,
    `smtpd_recipient_limit = ${opts.recipientLimit ?? 1000}`,
    `smtpd_recipient_restrictions = ${restrictions.join(', ')}`,
    // Nothing leaves this instance: bounces it makes must not hit DNS or the network.
    'default_transport = error:test peer relays nothing',
    'relay_transport = error:test peer relays nothing',
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
    ['-c', dir, '-M', `127.0.0.1:${port}/inet = 127.0.0.1:${port} inet n - n - - smtpd`],
  ];
  for (const args of steps) {
    const r = await run(POSTCONF, args);
    if (r.code !== 0) throw new PostfixStartError(`postconf ${args.join(' ')} failed: ${r.out}`);
  }
  const maillogPath = join(dir, 'maillog');
  const maillog = (): string => (existsSync(maillogPath) ? readFileSync(maillogPath, 'utf8') : '');
  const started = await run(POSTFIX, ['-c', dir, 'start']);
  if (started.code !== 0 || !(await greets(port, 15_000))) {
    await run(POSTFIX, ['-c', dir, 'abort']);
    const log = maillog();
    rmSync(dir, { recursive: true, force: true });
    throw new PostfixStartError(`postfix -c ${dir} start failed (${started.code}): ${started.out}\n--- maillog ---\n${log}`);
  }

  let stopped = false;
  return {
    port,
    dir,
    maillog,
    maildir(user) {
      const files: string[] = [];
      for (const sub of ['new', 'cur']) {
        const p = join(mail, user, sub);
        if (existsSync(p)) files.push(...readdirSync(p).map((f) => join(p, f)));
      }
      return files;
    },
    transactions() {
      const m = new Map<string, number>();
      for (const match of maillog().matchAll(/postfix\/qmgr\[\d+\]: ([0-9A-Za-z]+): from=<[^>]*>, size=\d+, nrcpt=(\d+)/g)) {
        m.set(match[1]!, Number(match[2]));
      }
      return m;
    },
    async waitLog(pred, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const log = maillog();
        if (pred(log)) return log;
        if (Date.now() > deadline) throw new Error(`postfix maillog did not reach the expected state within ${timeoutMs} ms:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(POSTFIX, ['-c', dir, 'stop']);
      if (!(await portClosed(port, 10_000))) await run(POSTFIX, ['-c', dir, 'abort']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/*
 * Small end-to-end helpers shared by test/interop, test/dsn and test/local
 * (they need no Postfix; they live here because this is the support file of
 * the end-to-end suites).
 */

/** Polls pred (sync or async) until true; throws `what` after timeoutMs. Bounded by design. */
export async function waitUntil(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The files in a Halcyon local mailbox (`<dataDir>/mailboxes/<domain>/<user>/{new,cur}`), contents read. */
export function halcyonMaildir(dataDir: string, domain: string, user: string): { path: string; content: Buffer }[] {
  const out: { path: string; content: Buffer }[] = [];
  for (const sub of ['new', 'cur']) {
    const p = join(dataDir, 'mailboxes', domain, user, sub);
    if (!existsSync(p)) continue;
    for (const f of readdirSync(p).sort()) out.push({ path: join(p, f), content: readFileSync(join(p, f)) });
  }
  return out;
}

/** Whatever has a removeCompleted(limit) (the Store), patched in place. */
interface Removable {
  removeCompleted(limit: number): Promise<string[]>;
}

/**
 * Keeps finished messages in the queue until `release()` so a test can read
 * their final recipient rows (last reply, host) — the scheduler otherwise
 * removes them on its next pass. Nothing else about scheduling changes.
 */
export function holdRemoval(store: Removable): { release(): void } {
  const original = store.removeCompleted.bind(store);
  let held = true;
  store.removeCompleted = async (limit: number) => (held ? [] : original(limit));
  return { release() { held = false; } };
}

export interface Submission {
  readonly from: string;
  readonly to: readonly string[];
  /** Headers and body, CRLF lines, not dot-stuffed. */
  readonly content: string;
  /** ESMTP parameters on MAIL FROM (e.g. "RET=HDRS") and on every RCPT TO (e.g. "NOTIFY=NEVER"). */
  readonly mailParams?: string;
  readonly rcptParams?: string;
}

/** Submits one message over SMTP to 127.0.0.1:port; every step must get its 2xx/354. Returns the queue id. */
export async function submit(port: number, m: Submission): Promise<string> {
  const c = await RawSmtpClient.connect(port);
  try {
    const greeting = await c.read();
    if (greeting.code !== 220) throw new Error(`greeting ${greeting.code}`);
    await c.expect('EHLO client.test', 250);
    await c.expect(`MAIL FROM:<${m.from}>${m.mailParams ? ` ${m.mailParams}` : ''}`, 250);
    for (const rcpt of m.to) await c.expect(`RCPT TO:<${rcpt}>${m.rcptParams ? ` ${m.rcptParams}` : ''}`, 250);
    await c.expect('DATA', 354);
    const body = m.content.endsWith('\r\n') ? m.content : `${m.content}\r\n`;
    c.write(body.replace(/^\./gm, '..'));
    const done = await c.cmd('.');
    const id = queuedId(done);
    if (!id) throw new Error(`end of data → ${done.code} ${done.lines.join(' ')}`);
    await c.cmd('QUIT').catch(() => undefined);
    return id;
  } finally {
    c.close();
  }
}

/** A small message with a unique subject. */
export function message(from: string, to: readonly string[], subject: string, body = 'Hello from the interop tests.'): string {
  return [`From: <${from}>`, `To: ${to.map((a) => `<${a}>`).join(', ')}`, `Subject: ${subject}`,
    `Message-ID: <${subject.replace(/\W+/g, '-')}.${Date.now()}@client.test>`, 'Date: Thu, 01 Jan 2026 00:00:00 +0000', '', body, ''].join('\r\n');
}

export interface MimePart {
  /** Lower-cased header name → unfolded value (the first of each name). */
  readonly headers: ReadonlyMap<string, string>;
  /** The media type alone, lower-cased ("message/delivery-status"). */
  readonly type: string;
  readonly body: string;
}

export interface ParsedDsn {
  readonly top: MimePart;
  readonly parts: readonly MimePart[];
  /** The delivery-status fields: the per-message group, then one group per recipient. */
  readonly perMessage: ReadonlyMap<string, string>;
  readonly perRecipient: readonly ReadonlyMap<string, string>[];
}

const unfold = (s: string): string => s.replace(/\r?\n[ \t]+/g, ' ');

function fieldsOf(block: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of unfold(block).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !m.has(line.slice(0, i).trim().toLowerCase())) m.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  return m;
}

function partOf(raw: string): MimePart {
  const split = /\r?\n\r?\n/.exec(raw);
  const head = split ? raw.slice(0, split.index) : raw;
  const body = split ? raw.slice(split.index + split[0].length) : '';
  const headers = fieldsOf(head);
  const type = (headers.get('content-type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
  return { headers, type, body };
}

/**
 * A strict, minimal reader for a multipart/report DSN (RFC 3462/3464): the
 * top headers, the top-level parts, and the delivery-status field groups.
 * mailparser folds message/delivery-status into the text, so field-by-field
 * checks need the raw parts. Throws when the message is not multipart.
 */
export function parseDsn(raw: Buffer | string): ParsedDsn {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  const top = partOf(text);
  const boundary = /boundary="?([^";\s]+)"?/i.exec(top.headers.get('content-type') ?? '')?.[1];
  if (!boundary) throw new Error(`not a multipart message: ${top.headers.get('content-type')}`);
  const pieces = top.body.split(`--${boundary}`);
  // pieces[0] is the preamble; the last one starts with "--" (the close delimiter).
  const parts = pieces.slice(1).filter((p) => !p.startsWith('--')).map((p) => partOf(p.replace(/^\r?\n/, '').replace(/\r?\n$/, '')));
  const status = parts.find((p) => p.type === 'message/delivery-status');
  const groups = status ? status.body.split(/\r?\n\r?\n/).filter((g) => g.trim() !== '').map(fieldsOf) : [];
  return { top, parts, perMessage: groups[0] ?? new Map(), perRecipient: groups.slice(1) };
}

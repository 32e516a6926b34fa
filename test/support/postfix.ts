/**
 * test/support/postfix — Debian's real Postfix as a private test peer, for
 * interop tests of Halcyon's SMTP client (see
 * /work/shared/notes/postfix-as-a-test-peer.md, which this follows).
 *
 * `startPostfix()` builds the peer's main.cf settings (virtual Maildirs
 * under example.test, an optional recipient limit, an optional access table
 * answering chosen recipients e.g. `552 5.2.2 Mailbox full`) and runs it on
 * 127.0.0.1:PORT through postfix-instance.ts, which owns the config dir,
 * master.cf edits and start/stop. Several can run at once.
 *
 * `requirePeer(t, path)` decides what a missing peer means: a skip with the
 * reason on a laptop, a failure when HALCYON_REQUIRE_INTEROP=1 (CI installs
 * Postfix, so a missing one there is a broken CI, not a pass).
 *
 * It does not relay anywhere (default_transport = error), read DNS, or touch
 * the system instance in /etc/postfix beyond reading its master.cf and
 * dynamic maps. Needs root (postfix -c with a private dir, chown to postfix).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { RawSmtpClient, queuedId } from './smtp-client.js';
import { available } from './unavailable.js';
import {
  POSTFIX, baseMainCf, configurePostfix, freeLoopbackPort, makePostfixDirs, recipientRestrictions, virtualMailboxSettings,
} from './postfix-instance.js';

export { POSTFIX, POSTCONF, PostfixStartError, freeLoopbackPort } from './postfix-instance.js';

/**
 * True when the peer at `path` is installed (and we can run it). Otherwise:
 * skips the test with a clear message, or throws when HALCYON_REQUIRE_INTEROP=1.
 */
export function requirePeer(t: { skip(message?: string): void }, path: string): boolean {
  let why: string | undefined;
  if (!existsSync(path)) why = `${path} is not installed`;
  else if (path === POSTFIX && userInfo().uid !== 0) why = 'a private Postfix instance needs root';
  return available(t, why === undefined ? undefined : `interop peer unavailable: ${why}`);
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

const DOMAIN = 'example.test';

export async function startPostfix(opts: PostfixOptions = {}): Promise<PostfixPeer> {
  const dirs = makePostfixDirs('halcyon-postfix-');
  const port = opts.port ?? await freeLoopbackPort();
  const users = opts.virtualMailboxes ?? Array.from({ length: 10 }, (_, i) => `a${i}`);
  const pf = await configurePostfix(dirs, port, {
    ...baseMainCf(dirs, 'postfix-peer.test', 'postfix-peer.test'),
    smtpd_banner: '$myhostname ESMTP Postfix (test peer)',
    ...virtualMailboxSettings(dirs, DOMAIN, users),
    smtpd_recipient_limit: String(opts.recipientLimit ?? 1000),
    smtpd_recipient_restrictions: recipientRestrictions(opts.accessTable),
    // Nothing leaves this instance: bounces it makes must not hit DNS or the network.
    default_transport: 'error:test peer relays nothing',
    relay_transport: 'error:test peer relays nothing',
  });
  await pf.start();
  const { maillog } = pf;

  return {
    port,
    dir: dirs.dir,
    maillog,
    maildir(user) {
      const files: string[] = [];
      for (const sub of ['new', 'cur']) {
        const p = join(dirs.mail, user, sub);
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
    stop: pf.stop,
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

/** Whatever has a removeCompleted(limit) (the RecipientQueue), patched in place. */
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

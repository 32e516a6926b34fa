/**
 * local/maildir — local mailbox delivery (Maildir) and the local recipient
 * table (mailboxes, aliases, catch-all, quotas) built from the config's
 * `domains`.
 *
 * What it does:
 * - `Maildir.deliver` writes one message the Maildir way: a unique name in
 *   tmp/, the file fsync'd, renamed into new/, new/ fsync'd. A message is in
 *   new/ complete or not at all; on any error nothing is left in new/ or tmp/.
 * - `Maildir.usage` counts bytes in new/ and cur/ (from the `,S=<size>` in
 *   names when present, stat otherwise); `usageCached` is the cheap figure
 *   RCPT-time quota checks use.
 * - `Mailboxes` answers "who is this address?" and "is that mailbox full?".
 *
 * What it does not: IMAP/POP, flags, mailbox creation policy (a mailbox
 * directory is made on first delivery), sub-addressing ("user+tag"), Sieve,
 * or deciding replies (inbound maps `full` to 552/452 via over_quota_reply).
 *
 * Choices:
 * - Local parts are compared case-insensitively (RFC 5321 allows a server to
 *   treat its own local parts so; "Bob" and "bob" being different people
 *   surprises everyone). Domains too, and a trailing dot is ignored.
 * - An alias wins over a mailbox of the same local part (as Postfix's virtual
 *   aliases do), so "bob → [bob, bob@elsewhere]" keeps a copy: a target that
 *   is already on the expansion path is taken as the mailbox, not expanded
 *   again. Any other repeat, or depth beyond 10, is a loop and is dropped.
 *   The aliases file (local/alias-source) comes after a domain's own
 *   `aliases` and applies to every local domain, with the same rules.
 * - Usage staleness: the cached figure grows with each delivery here at once,
 *   but mail removed by a reader is seen only at the next rescan, which
 *   `usageCached` starts in the background when the figure is older than
 *   `maxAgeMs` (default 60 s) or was never computed (then it reads 0 until the
 *   scan ends). A quota can so be overstated for up to a minute after a user
 *   deletes mail, and understated only before the first scan — call
 *   `Mailboxes.refreshUsage()` at startup to close that window.
 */
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import type { DomainConfig } from '../config/schema.js';
import { sizeBytes } from '../config/units.js';

let deliveryCounter = 0;

/** A Maildir name part must not contain "/" or ":" (nor "," here, as ",S=" is parsed back). */
const safeHost = (h: string) => h.replace(/\//g, '\\057').replace(/:/g, '\\072').replace(/,/g, '\\054');
/** Header values we write must not be able to start a new header line. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');
const SIZE_IN_NAME = /,S=(\d+)/;

/** A path segment taken from config or an address: nothing that could climb out of data_dir. */
function safeSegment(s: string): string {
  if (s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s)) throw new RangeError(`unsafe mailbox path segment: ${JSON.stringify(s)}`);
  return s;
}

export interface DeliverOptions {
  deliveredTo?: string;
  /** Envelope sender; "" becomes "<>". */
  returnPath?: string;
  /**
   * A Maildir++ folder ("Junk" → `.Junk/`) instead of the inbox. Mail in a folder does not count
   * towards the quota (usage counts the inbox's new/ and cur/).
   */
  folder?: 'Junk';
}

export class Maildir {
  private ready: Promise<void> | undefined;
  private cached: number | undefined;
  private cachedAt = 0;
  private scan: { promise: Promise<number>; delivered: Map<string, number> } | undefined;
  private readonly hostname: string;
  private readonly maxAgeMs: number;

  constructor(readonly root: string, opts: { hostname?: string; maxAgeMs?: number } = {}) {
    this.hostname = safeHost(opts.hostname ?? osHostname());
    this.maxAgeMs = opts.maxAgeMs ?? 60_000;
  }

  /** The Maildir of user@domain: `<dataDir>/mailboxes/<domain>/<user>/`. */
  static forMailbox(dataDir: string, domain: string, user: string, opts?: { hostname?: string; maxAgeMs?: number }): Maildir {
    return new Maildir(join(dataDir, 'mailboxes', safeSegment(domain.toLowerCase()), safeSegment(user.toLowerCase())), opts);
  }

  private ensureDirs(): Promise<void> {
    this.ready ??= Promise.all(['tmp', 'new', 'cur'].map((d) => mkdir(join(this.root, d), { recursive: true, mode: 0o700 })))
      .then(() => undefined)
      .catch((err: unknown) => {
        this.ready = undefined; // let the next delivery try again
        throw err;
      });
    return this.ready;
  }

  private uniqueName(size: number): string {
    const nowUs = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    const sec = Math.floor(nowUs / 1_000_000);
    const usec = nowUs % 1_000_000;
    deliveryCounter += 1;
    return `${sec}.M${usec}P${process.pid}Q${deliveryCounter}.${this.hostname},S=${size}`;
  }

  async deliver(body: Buffer, opts: DeliverOptions = {}): Promise<{ path: string; size: number }> {
    await this.ensureDirs();
    const root = opts.folder ? join(this.root, `.${opts.folder}`) : this.root;
    if (opts.folder) await Promise.all(['tmp', 'new', 'cur'].map((d) => mkdir(join(root, d), { recursive: true, mode: 0o700 })));
    let header = '';
    if (opts.returnPath !== undefined) header += `Return-Path: <${oneLine(opts.returnPath)}>\r\n`;
    if (opts.deliveredTo !== undefined) header += `Delivered-To: ${oneLine(opts.deliveredTo)}\r\n`;
    const head = Buffer.from(header, 'utf8');
    const size = head.length + body.length;
    const name = this.uniqueName(size);
    const tmpPath = join(root, 'tmp', name);
    const newPath = join(root, 'new', name);

    // 'wx': never overwrite; a clash would mean the name was not unique after all.
    const fh = await open(tmpPath, 'wx', 0o600);
    try {
      try {
        await fh.writev([head, body]);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmpPath, newPath);
    } catch (err) {
      await unlink(tmpPath).catch(() => undefined);
      throw err;
    }
    try {
      const dir = await open(join(root, 'new'), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      // The caller will retry this delivery: take the file back so the retry cannot duplicate it.
      await unlink(newPath).catch(() => undefined);
      throw err;
    }
    if (opts.folder) return { path: newPath, size };
    if (this.cached !== undefined) this.cached += size;
    this.scan?.delivered.set(name, size);
    return { path: newPath, size };
  }

  /** Bytes in new/ and cur/, by a fresh scan; also refreshes the cached figure. */
  usage(): Promise<number> {
    if (this.scan) return this.scan.promise;
    const delivered = new Map<string, number>();
    const promise = (async () => {
      const seen = new Set<string>();
      let total = 0;
      for (const sub of ['new', 'cur']) {
        const dir = join(this.root, sub);
        let names: string[];
        try {
          names = await readdir(dir);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        for (const n of names) {
          const base = n.split(':')[0]!; // cur/ names carry ":2,<flags>"
          seen.add(base);
          const m = SIZE_IN_NAME.exec(base);
          if (m) {
            total += Number(m[1]);
            continue;
          }
          try {
            total += (await stat(join(dir, n))).size;
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // moved or expunged meanwhile
          }
        }
      }
      // Deliveries that finished during the scan but after their directory was read.
      for (const [n, s] of delivered) if (!seen.has(n)) total += s;
      this.cached = total;
      this.cachedAt = Date.now();
      return total;
    })().finally(() => {
      this.scan = undefined;
    });
    this.scan = { promise, delivered };
    return promise;
  }

  /** The cached usage, without I/O; starts a background rescan when stale (see the header). */
  usageCached(): number {
    if (this.cached === undefined || Date.now() - this.cachedAt > this.maxAgeMs) {
      void this.usage().catch(() => undefined); // a failed scan leaves the old figure; the next call retries
    }
    return this.cached ?? 0;
  }
}

export interface MailboxRef {
  readonly kind: 'mailbox';
  readonly domain: string;
  readonly user: string;
  /** Bytes; 0 = unlimited. */
  readonly quota: number;
}

export type LocalLookup =
  | MailboxRef
  | { readonly kind: 'alias'; readonly targets: readonly string[] }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'not-local' };

export interface Expansion {
  /** Local mailboxes to deliver to, de-duplicated. */
  readonly mailboxes: readonly MailboxRef[];
  /** Remote addresses to relay to, de-duplicated. */
  readonly remote: readonly string[];
  /** Local addresses that matched nothing (no mailbox, alias or catch-all). */
  readonly unknown: readonly string[];
  /** Alias targets dropped because they looped or went deeper than MAX_ALIAS_DEPTH. */
  readonly loops: readonly string[];
}

export const MAX_ALIAS_DEPTH = 10;
export const MAX_ALIAS_STEPS = 10_000;

interface DomainTable {
  readonly config: DomainConfig;
  readonly mailboxes: ReadonlyMap<string, number>;
  readonly aliases: ReadonlyMap<string, readonly string[]>;
}

/** Splits at the last "@"; the domain is normalized, the local part kept as given. */
function splitAddress(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return { local: address.slice(0, at), domain: address.slice(at + 1).replace(/\.$/, '').toLowerCase() };
}

export class Mailboxes {
  private readonly domains = new Map<string, DomainTable>();
  private readonly maildirs = new Map<string, Maildir>();

  /**
   * `fileAliases`: the aliases file's table (local/alias-source), for every local domain, consulted after
   * a domain's own `aliases`; read at each lookup, so a reload of the file is in force at once.
   */
  constructor(domains: readonly DomainConfig[], private readonly dataDir: string,
    private readonly maildirOptions: { hostname?: string; maxAgeMs?: number } = {},
    private readonly fileAliases?: { get(localPart: string): readonly string[] | undefined }) {
    for (const d of domains) {
      this.domains.set(d.name.replace(/\.$/, '').toLowerCase(), {
        config: d,
        mailboxes: new Map(d.mailboxes.map((m) => [m.user.toLowerCase(), sizeBytes(m.quota)])),
        aliases: new Map(Object.entries(d.aliases).map(([k, v]) => [k.toLowerCase(), v])),
      });
    }
  }

  isLocalDomain(domain: string): boolean {
    return this.domains.has(domain.replace(/\.$/, '').toLowerCase());
  }

  /** over_quota_reply of a local domain ("552" when the domain is not local). */
  overQuotaReply(domain: string): '552' | '452' {
    return this.domains.get(domain.replace(/\.$/, '').toLowerCase())?.config.over_quota_reply ?? '552';
  }

  /** One level: what the address itself is. An address without "@" is not local. */
  lookup(address: string): LocalLookup {
    return this.lookupIn(address, { aliases: true, catchAll: true });
  }

  private lookupIn(address: string, use: { aliases: boolean; catchAll: boolean }): LocalLookup {
    const parts = splitAddress(address);
    const table = parts && this.domains.get(parts.domain);
    if (!parts || !table) return { kind: 'not-local' };
    const user = parts.local.toLowerCase();
    const targets = use.aliases ? table.aliases.get(user) ?? this.fileAliases?.get(user) : undefined;
    if (targets) return { kind: 'alias', targets: targets.map((t) => (t.includes('@') ? t : `${t}@${parts.domain}`)) };
    const quota = table.mailboxes.get(user);
    if (quota !== undefined) return { kind: 'mailbox', domain: parts.domain, user, quota };
    const catchAll = table.config.catch_all;
    if (use.catchAll && catchAll !== undefined && catchAll.toLowerCase() !== user) {
      return this.lookupIn(`${catchAll}@${parts.domain}`, { aliases: use.aliases, catchAll: false });
    }
    return { kind: 'unknown' };
  }

  /** The mailbox an address names itself, aliases and catch-all aside: what local delivery writes to (aliases were expanded at RCPT). */
  mailbox(address: string): MailboxRef | undefined {
    const found = this.lookupIn(address, { aliases: false, catchAll: false });
    return found.kind === 'mailbox' ? found : undefined;
  }

  /** Follows aliases (and catch-alls) to local mailboxes and remote addresses, bounded and loop-safe. */
  expand(address: string): Expansion {
    const mailboxes = new Map<string, MailboxRef>();
    const remote = new Set<string>();
    const unknown = new Set<string>();
    const loops = new Set<string>();
    const key = (a: string) => {
      const p = splitAddress(a);
      return p ? `${p.local.toLowerCase()}@${p.domain}` : a.toLowerCase();
    };

    // Depth is bounded by MAX_ALIAS_DEPTH; breadth (an alias fanning out to
    // aliases that fan out …) by a step budget, so no config can stall RCPT.
    let steps = 0;
    const walk = (addr: string, path: readonly string[]): void => {
      const k = key(addr);
      const onPath = path.includes(k);
      if (path.length > MAX_ALIAS_DEPTH || ++steps > MAX_ALIAS_STEPS) {
        loops.add(addr);
        return;
      }
      // A repeat on the path may still name a real mailbox ("keep a copy"); only then is it not a loop.
      const found = this.lookupIn(addr, { aliases: !onPath, catchAll: true });
      switch (found.kind) {
        case 'mailbox':
          mailboxes.set(`${found.user}@${found.domain}`, found);
          return;
        case 'alias':
          for (const t of found.targets) walk(t, [...path, k]);
          return;
        case 'not-local':
          remote.add(addr);
          return;
        case 'unknown':
          (onPath ? loops : unknown).add(addr);
          return;
      }
    };
    walk(address, []);
    return { mailboxes: [...mailboxes.values()], remote: [...remote], unknown: [...unknown], loops: [...loops] };
  }

  /** The Maildir of a local mailbox (one instance per mailbox, so its usage cache is shared). */
  maildir(domain: string, user: string): Maildir {
    const k = `${user.toLowerCase()}@${domain.toLowerCase()}`;
    let m = this.maildirs.get(k);
    if (!m) {
      m = Maildir.forMailbox(this.dataDir, domain, user, this.maildirOptions);
      this.maildirs.set(k, m);
    }
    return m;
  }

  /** Whether one mailbox can take `size` more bytes (quota 0 = unlimited), from the cached usage. */
  mailboxFull(box: MailboxRef, size: number): boolean {
    if (box.quota <= 0) return false;
    const used = this.maildir(box.domain, box.user).usageCached();
    return used >= box.quota || used + size > box.quota;
  }

  /**
   * RCPT-time check. An address that reaches only local mailboxes is full
   * when every one of them is full; one with any remote target, or not local,
   * or unknown, is 'ok' here (other checks reject unknown users).
   */
  checkQuota(address: string, declaredSize = 0): 'ok' | 'full' {
    const x = this.expand(address);
    if (x.mailboxes.length === 0 || x.remote.length > 0) return 'ok';
    return x.mailboxes.every((b) => this.mailboxFull(b, declaredSize)) ? 'full' : 'ok';
  }

  /** Rescans every configured mailbox's usage (call at startup and whenever exactness matters). */
  async refreshUsage(): Promise<void> {
    const all: Promise<number>[] = [];
    for (const [domain, t] of this.domains) for (const user of t.mailboxes.keys()) all.push(this.maildir(domain, user).usage());
    await Promise.all(all);
  }
}

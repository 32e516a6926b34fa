/**
 * bench/postfix — a private Debian Postfix instance for the benchmarks, run
 * through test/support/postfix-instance.ts (config dir, master.cf edits,
 * start/stop); this file only builds the bench's main.cf settings and adds
 * the bench's readings (qmgr transactions, RSS/PSS of the process tree).
 *
 * Two roles: a relay under test (`relayTo` set: everything for example.test
 * goes to smtp:[127.0.0.1]:PORT, default durability, raised process limits)
 * and a remote peer (virtual Maildirs for example.test, with an optional
 * recipient limit and access-table replies). Listens on 127.0.0.1 only,
 * never reads DNS for delivery, never touches the system instance. Nothing
 * else leaves it (default_transport = error). Needs root.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  POSTCONF, baseMainCf, configurePostfix, freeLoopbackPort, makePostfixDirs, recipientRestrictions, virtualMailboxSettings,
} from '../test/support/postfix-instance.js';
import { cpuSeconds, processTree, pssKb, rssKb, sh, sleep, track } from './procs.js';

export { POSTFIX, POSTCONF, PostfixStartError } from '../test/support/postfix-instance.js';

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
  /** User + system CPU seconds of the master and every process it started (reaped ones included) so far. */
  cpuSeconds(): number;
  /** The master's pid (0 when not running): the root of the instance's process tree. */
  masterPid(): number;
  /** `postconf -n`: the settings this instance runs with that differ from Postfix's defaults. */
  nonDefaults(): string[];
  stop(): Promise<void>;
}

const DOMAIN = 'example.test';

export function postfixVersion(): string {
  return sh(POSTCONF, ['-h', 'mail_version']).trim() || 'unknown';
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<BenchPostfix> {
  const dirs = makePostfixDirs('halcyon-bench-postfix-');
  const port = await freeLoopbackPort();
  const maxproc = opts.maxproc ?? 100;
  const role = opts.relayTo !== undefined
    ? { relay_domains: DOMAIN, transport_maps: `inline:{ ${DOMAIN}=smtp:[127.0.0.1]:${opts.relayTo} }` }
    : virtualMailboxSettings(dirs, DOMAIN, opts.mailboxes ?? []);
  const pf = await configurePostfix(dirs, port, {
    ...baseMainCf(dirs, `postfix-${port}.bench.test`, 'bench.test'),
    default_process_limit: String(maxproc),
    ...role,
    smtpd_recipient_limit: String(opts.recipientLimit ?? 1000),
    smtpd_recipient_restrictions: recipientRestrictions(opts.accessTable),
    // Bounces and anything not for example.test stay here: no DNS, no network.
    default_transport: 'error:bench relays only example.test',
    disable_dns_lookups: 'yes',
  }, { smtpdProcessLimit: maxproc, postconf: [['-F', `smtp/unix/process_limit = ${maxproc}`]] });

  // Tracked before start so an interrupt while it starts still stops it.
  const untrack = track(`postfix ${dirs.dir}`, async () => {
    await pf.stop();
    await sleep(200);
  }, pf.stopSync);
  try {
    await pf.start();
  } catch (err) {
    await untrack();
    throw err;
  }
  const masterPid = (): number => {
    try {
      return Number(readFileSync(join(dirs.queue, 'pid', 'master.pid'), 'utf8').trim());
    } catch {
      return 0;
    }
  };

  return {
    port,
    dir: dirs.dir,
    maillog: pf.maillog,
    masterPid,
    transactions() {
      const out: { id: string; from: string; nrcpt: number }[] = [];
      for (const m of pf.maillog().matchAll(/postfix\/qmgr\[\d+\]: ([0-9A-Za-z]+): from=<([^>]*)>, size=\d+, nrcpt=(\d+)/g)) {
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
    cpuSeconds() {
      const pid = masterPid();
      return pid ? cpuSeconds(pid) : 0;
    },
    nonDefaults() {
      return sh(POSTCONF, ['-c', dirs.dir, '-n']).split('\n').filter(Boolean);
    },
    stop: untrack,
  };
}

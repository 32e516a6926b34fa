/**
 * http/audit — the one log line every admin action writes (flush, hold,
 * release, delete, bounce, inject, destination reset, suppress, unsuppress,
 * suppression import, newaliases): what was done, who did
 * it, and every queue id it touched, so `grep QUEUEID` over the log finds the
 * administrator's hand in a message's story:
 *
 *   admin hold by ops-alice (api): 2 message(s)   {"event":"admin","action":"hold","who":"ops-alice","queue_ids":[…]}
 *
 * `who` is the API token's name (`http.tokens`; "http.token" for the unnamed
 * one; "anonymous" on a loopback listener used without a token), or the Unix
 * user running the CLI on a stopped server's data_dir. A client's own claim
 * of its user (the CLI sends it) is logged apart as `user`, never as `who`.
 *
 * With the server stopped there is no server log: the CLI appends its lines,
 * in the configured log_format, to DATA_DIR/admin.log (created on the first
 * action, never by a read-only command; as root, owned like data_dir), or to
 * stderr when that file cannot be written. Does not decide or perform anything.
 */
import type { LastReply } from '../queue/model.js';
import { closeSync, fchownSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger, type LogTime } from '../log.js';
import type { Actor } from './actor.js';
import type { AdminDeps } from './admin.js';

/** Defined in http/actor (the CLI reads them without loading the logger); re-exported for their callers. */
export { unixActor, type Actor } from './actor.js';

export type AdminVerb = 'flush' | 'hold' | 'release' | 'delete' | 'bounce' | 'inject' | 'destination reset'
  | 'suppress' | 'unsuppress' | 'suppression import' | 'newaliases' | 'tenant suspend' | 'tenant resume';

export interface AdminAction {
  readonly action: AdminVerb;
  /** Every queue id the action touched (a domain-wide hold lists them all). */
  readonly ids: readonly string[];
  /** What else a postmaster wants on the line (the domain, the destination, counts). */
  readonly detail?: Record<string, unknown>;
}

/** Fields and message of the admin line. */
export function adminLine(a: AdminAction, actor: Actor): { fields: Record<string, unknown>; msg: string } {
  const fields: Record<string, unknown> = {
    event: 'admin', action: a.action, who: actor.who, via: actor.via, ip: actor.ip, user: actor.user,
    ...a.detail, count: a.ids.length, queue_ids: a.ids,
  };
  const ids = a.ids.length <= 3 ? a.ids.join(' ') : `${a.ids.slice(0, 3).join(' ')} …`;
  // A suppression-list action names addresses, not messages.
  const addresses = a.detail?.['addresses'];
  if (Array.isArray(addresses)) return { fields, msg: `admin ${a.action} by ${actor.who} (${actor.via}): ${addresses.map(String).join(' ')}` };
  if (a.action === 'newaliases') return { fields, msg: `admin ${a.action} by ${actor.who} (${actor.via}): ${String(a.detail?.['aliases'])} alias(es) from ${String(a.detail?.['file'])}` };
  if (a.action === 'suppression import') return { fields, msg: `admin ${a.action} by ${actor.who} (${actor.via}): ${String(a.detail?.['imported'])} address(es)` };
  return { fields, msg: `admin ${a.action} by ${actor.who} (${actor.via}): ${a.ids.length} message(s)${ids ? ` ${ids}` : ''}` };
}

/**
 * A running server's admin hooks (http/admin's `onAction`, `onInjected`, `onBounced`): the audit line of
 * each action, and the lines an injected message and an administrator's bounce write in the message's
 * story (`accepted`, `delivery … status=bounced`), each counted by `count`.
 */
export function serverAdminLog(log: Logger, count: { accepted(tenant?: string): void; bounced(to: string, reply: LastReply, destination: string): void }): Pick<AdminDeps, 'onAction' | 'onInjected' | 'onBounced'> {
  return {
    onAction: (action, actor) => {
      const { fields, msg } = adminLine(action, actor);
      log.info(fields, msg);
    },
    onInjected: (a, from, nrcpt, trace) => {
      count.accepted(a.tenant);
      log.info({ event: 'accepted', queue_id: a.id, from, nrcpt, size: a.size, message_id: a.messageId, ip: trace.clientIp, proto: trace.protocol, tenant: a.tenant, campaign: a.campaign },
        `${a.id}: accepted from=<${from}> size=${a.size} nrcpt=${nrcpt} message_id=${a.messageId ?? 'none'}${a.tenant ? ` tenant=${a.tenant}` : ''}${a.campaign ? ` campaign=${a.campaign}` : ''}`);
    },
    onBounced: (id, addresses, reply, destinations) => {
      for (const [i, to] of addresses.entries()) {
        count.bounced(to, reply, destinations[i] ?? '');
        log.info({ event: 'delivery', queue_id: id, to, relay: 'none', dsn: '5.0.0', status: 'bounced', class: reply.class, reply: '550 5.0.0 bounced by administrator', command: 'admin' },
          `${id}: to=<${to}> status=bounced (administrator)`);
      }
    },
  };
}

export const ADMIN_LOG = 'admin.log';

/**
 * The logger the CLI's direct backend writes admin lines to: DATA_DIR/admin.log, opened on the first
 * line only (so read-only commands create nothing), synchronously (the CLI exits right after).
 */
export function directAuditLog(dataDir: string, format: 'json' | 'pretty', time?: LogTime): (a: AdminAction, actor: Actor) => void {
  let log: Logger | undefined;
  const open = (): Logger => {
    const file = join(dataDir, ADMIN_LOG);
    let dest: { write(s: string): boolean };
    try {
      const fd = openSync(file, 'a', 0o640);
      // As root, the file is the data_dir owner's: the server's user can read it, the next CLI run can append.
      if (process.getuid?.() === 0) {
        const st = statSync(dataDir);
        fchownSync(fd, st.uid, st.gid);
      }
      dest = { write: (s: string) => { writeSync(fd, s); return true; } };
      process.once('exit', () => { try { closeSync(fd); } catch { /* already closed */ } });
    } catch (err) {
      process.stderr.write(`halcyon: cannot write ${file} (${(err as Error).message}); the admin log line follows here\n`);
      dest = { write: (s: string) => process.stderr.write(s) };
    }
    // The destination is written synchronously above; pino only needs its write(). Always at info: an
    // operator's action is recorded whatever log_level says about the server's chatter.
    return createLogger({ level: 'info', format, time, destination: dest as unknown as NodeJS.WritableStream });
  };
  return (a, actor) => {
    const { fields, msg } = adminLine(a, actor);
    (log ??= open()).info(fields, msg);
  };
}

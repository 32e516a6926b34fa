/**
 * cli/queue-cmd — `halcyon queue list|show|flush|hold|release|delete|bounce|migrate`
 * and `halcyon destinations [reset KEY]` (`queue shape` and `queue cat` are
 * cli/queue-tools'; cli/program defines their arguments and options).
 *
 * Each command goes through cli/admin-client: the running server's admin API when
 * it answers, else the data_dir store directly (`--direct` forces that).
 * Every listing has `--json`; text output is for people. Exit codes: 0 done,
 * 1 failure, 2 usage or config error, 3 nothing matched (unknown id).
 */
import { createInterface } from 'node:readline/promises';
import { ConfigError, configFileFrom } from '../config/file.js';
import { parseDuration } from '../config/units.js';
import { AdminError } from '../http/admin-api.js';
import type { RecipientState } from '../queue/model.js';
import { usesPostgres } from '../queue/open.js';
import { openBackendOf, type Backend, type BackendOptions } from './admin-client.js';
import { actAsDataDirOwner } from './data-owner.js';
import { age, formatDestinations, formatMessageDetail, formatQueueList } from './format.js';
import { progress } from './progress.js';

export interface Common { config?: string; direct?: boolean; json?: boolean }

const ID = /^[0-9A-HJKMNP-TV-Z]{16}$/;
const STATES: readonly RecipientState[] = ['queued', 'inflight', 'delivered', 'deferred', 'failed', 'expired'];
/** Ids per delete request, so a big delete shows progress and no request grows without bound. */
const DELETE_CHUNK = 500;

export class UsageError extends Error {
  readonly code = 'HAL_ERR_USAGE';
}

/**
 * Loads the config, opens a backend, runs `fn`, maps errors to exit codes. `access` is how a stopped
 * server's store is opened: listings read it without creating any file; actions need it to exist.
 */
export async function withBackend(opts: Common, fn: (b: Backend) => Promise<void>, access: BackendOptions['access'] = 'existing'): Promise<void> {
  let backend: Backend;
  try {
    backend = await openBackendOf(configFileFrom(opts.config), { direct: opts.direct, access });
  } catch (err) {
    // Thrown only by the direct backend, which has loaded the store by then.
    if (err instanceof Error && err instanceof (await import('../queue/sqlite/db.js')).NoQueueError) {
      process.stderr.write(`halcyon: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`${err.file ?? 'config'}: ${p.path}: ${p.message}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    await fn(backend);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`halcyon: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof AdminError) {
      process.stderr.write(`halcyon: ${err.message}\n`);
      process.exitCode = err.code === 'not_found' ? 3 : err.code === 'bad_request' ? 2 : 1;
    } else throw err;
  } finally {
    await backend.close();
  }
}

export const print = (json: boolean | undefined, value: unknown, text: string) =>
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : text);

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

function olderThanMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`not a duration: ${text}`);
  return ms;
}

function stateOf(text: string | undefined): RecipientState | undefined {
  if (text !== undefined && !STATES.includes(text as RecipientState)) throw new UsageError(`--state must be one of ${STATES.join(', ')}`);
  return text as RecipientState | undefined;
}

/**
 * Queue ids from stdin, one per line, as postsuper reads them after `-`: the first word of each line,
 * without mailq's `*` and `!` marks, so `mailq | awk …` output can be piped in. Blank lines are skipped.
 */
export function idsFromText(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]!.replace(/[*!]$/, '')).filter((id) => id !== '');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The messages a command acts on: the ids given (`-` among them reads more from stdin), or every message
 * with a recipient at --domain and/or in --state — not both kinds of selection at once.
 */
async function selectMessages(b: Backend, ids: readonly string[], opts: { domain?: string; state?: string }): Promise<string[]> {
  if (opts.domain !== undefined || opts.state !== undefined) {
    if (ids.length > 0) throw new UsageError('give ids or --domain/--state, not both');
    return [...new Set((await b.list({ domain: opts.domain?.toLowerCase(), state: stateOf(opts.state) })).map((e) => e.message.id))];
  }
  const given = ids.includes('-') ? [...ids.filter((i) => i !== '-'), ...idsFromText(await readStdin())] : [...ids];
  const bad = given.find((id) => !ID.test(id));
  if (bad !== undefined) throw new UsageError(`not a queue id: ${bad}`);
  return [...new Set(given)];
}

/** `halcyon queue migrate`: loads only the store the config names. */
export async function queueMigrate(opts: { config?: string }): Promise<void> {
  const cfg = (await import('../config/load.js')).loadConfig(configFileFrom(opts.config));
  if (usesPostgres(cfg)) {
    const { createPool, migratePg } = await import('../queue/pg/db.js');
    const pool = createPool({ url: cfg.queue.url!, preparedStatements: cfg.queue.prepared_statements });
    try {
      const { from, to } = await migratePg(pool);
      process.stdout.write(from === to ? `queue schema is at version ${to}\n` : `queue schema migrated from version ${from} to ${to}\n`);
    } finally {
      await pool.end();
    }
    return;
  }
  actAsDataDirOwner(cfg.data_dir);
  const [{ openSqliteQueue }, { SCHEMA_VERSION }] = await Promise.all([import('../queue/sqlite/store.js'), import('../queue/sqlite/schema.js')]);
  await (await openSqliteQueue({ dataDir: cfg.data_dir })).close();
  process.stdout.write(`queue schema is at version ${SCHEMA_VERSION} (${cfg.data_dir}/queue/queue.db)\n`);
}

/** `halcyon queue list`. */
export function queueList(opts: Common & { domain?: string; state?: string; olderThan?: string; search?: string }): Promise<void> {
  return withBackend(opts, async (b) => {
    const list = await b.list({ domain: opts.domain, state: stateOf(opts.state), olderThanMs: olderThanMs(opts.olderThan), q: opts.search });
    print(opts.json, list, formatQueueList(list, Date.now()));
  }, 'readonly');
}

/** `halcyon queue show ID`. */
export function queueShow(id: string, opts: Common): Promise<void> {
  return withBackend(opts, async (b) => {
    const d = await b.show(id);
    print(opts.json, d, formatMessageDetail(d, Date.now()));
  }, 'readonly');
}

/** `halcyon queue flush [all | DOMAIN | ID]`. */
export function queueFlush(target: string | undefined, opts: Common & { force?: boolean }): Promise<void> {
  return withBackend(opts, async (b) => {
    const sel = target === undefined ? {} : ID.test(target) ? { id: target } : { domain: target.toLowerCase() };
    const r = await b.flush({ ...sel, force: opts.force });
    const now = Date.now();
    const blocked = r.blocked.map((x) => `\n  ${x.recipients} recipient(s) wait for ${x.destination}: ${x.why === 'suspended' ? 'destination suspended' : `destination backoff, ${age(x.until - now)} left`} (--force clears it)`).join('');
    print(opts.json, r, `${r.flushed} recipient(s) due now${r.reset.length ? `; backoff cleared for ${r.reset.join(', ')}` : ''}${b.kind === 'direct' ? ' (server not running: they go at its next start)' : ''}`
      + `${r.held ? `\n  ${r.held} recipient(s) of a held message: they go when it is released` : ''}${blocked}\n`);
  });
}

/** `halcyon queue hold|release [ID | --domain D]`. */
export function queueHold(id: string | undefined, opts: Common & { domain?: string }, held: boolean): Promise<void> {
  return withBackend(opts, async (b) => {
    if ((id === undefined) === (opts.domain === undefined)) throw new UsageError(`give a message id or --domain, not both`);
    const r = await b.hold(id ? { id } : { domain: opts.domain?.toLowerCase() }, held);
    print(opts.json, r, `${r.ids.length} message(s) ${held ? 'held' : 'released'}\n`);
  });
}

/** `halcyon queue delete [ID…] [--domain D] [--state S]`. */
export function queueDelete(ids: string[], opts: Common & { domain?: string; state?: string; yes?: boolean }): Promise<void> {
  return withBackend(opts, async (b) => {
    const fromStdin = ids.includes('-');
    const selected = await selectMessages(b, ids, opts);
    if (selected.length === 0) throw new UsageError('nothing to delete: give message ids, -, --domain or --state');
    if (!opts.yes) {
      if (fromStdin || !process.stdin.isTTY) throw new UsageError('refusing to delete without --yes when not on a terminal');
      if (!(await confirm(`Delete ${selected.length} message(s)? No DSN will be sent.`))) {
        process.stderr.write('nothing deleted\n');
        return;
      }
    }
    const bar = opts.json ? undefined : progress('deleting', selected.length);
    let deleted = 0;
    for (let i = 0; i < selected.length; i += DELETE_CHUNK) {
      deleted += (await b.remove(selected.slice(i, i + DELETE_CHUNK))).deleted;
      bar?.tick(Math.min(selected.length, i + DELETE_CHUNK));
    }
    bar?.end();
    print(opts.json, { deleted, requested: selected.length }, `${deleted} message(s) deleted${deleted < selected.length ? ` (${selected.length - deleted} not found)` : ''}\n`);
    if (deleted === 0) process.exitCode = 3;
  });
}

/** `halcyon queue bounce [ID… | -] [--domain D] [--state S]`. */
export function queueBounce(ids: string[], opts: Common & { domain?: string; state?: string }): Promise<void> {
  return withBackend(opts, async (b) => {
    const selected = await selectMessages(b, ids, opts);
    if (selected.length === 0) throw new UsageError('nothing to bounce: give message ids, -, --domain or --state');
    let bounced = 0;
    let skipped = 0;
    let missing = 0;
    for (const id of selected) {
      try {
        const r = await b.bounce(id);
        bounced += r.bounced;
        skipped += r.skipped;
      } catch (err) {
        // One id gone since it was listed (delivered, deleted) does not stop the others.
        if (!(err instanceof AdminError && err.code === 'not_found')) throw err;
        missing++;
        process.stderr.write(`halcyon: ${err.message}\n`);
      }
    }
    print(opts.json, { bounced, skipped },
      `${bounced} recipient(s) bounced${selected.length > 1 ? ` in ${selected.length - missing} message(s)` : ''}${skipped ? `, ${skipped} in flight left alone` : ''}${b.kind === 'direct' ? ' (the DSNs go when the server runs)' : ''}\n`);
    if (missing === selected.length) process.exitCode = 3;
  });
}

/** `halcyon destinations`. */
export function destinationsList(opts: Common): Promise<void> {
  return withBackend(opts, async (b) => {
    const list = await b.destinations();
    print(opts.json, list, formatDestinations(list, Date.now()));
  }, 'readonly');
}

/** `halcyon destinations reset KEY` (its options merged with the parent's: both define them). */
export function destinationReset(key: string, opts: Common): Promise<void> {
  return withBackend(opts, async (b) => {
    const r = await b.resetDestination(key);
    print(opts.json, r, `${key}: backoff cleared, ${r.flushed} recipient(s) due now\n`);
  });
}

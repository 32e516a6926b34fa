/**
 * cli/queue-cmd — `halcyon queue list|show|flush|hold|release|delete|bounce`
 * and `halcyon destinations [reset KEY]` (`queue shape` and `queue cat` are
 * cli/queue-tools').
 *
 * Each command goes through cli/backend: the running server's admin API when
 * it answers, else the data_dir store directly (`--direct` forces that).
 * Every listing has `--json`; text output is for people. Exit codes: 0 done,
 * 1 failure, 2 usage or config error, 3 nothing matched (unknown id).
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ConfigError, configFileFrom, loadConfig } from '../config/load.js';
import { parseDuration } from '../config/units.js';
import { AdminError } from '../http/admin.js';
import type { RecipientState } from '../queue/model.js';
import { usesPostgres } from '../queue/open.js';
import { createPool, migratePg } from '../queue/pg/db.js';
import { SCHEMA_VERSION } from '../queue/sqlite/schema.js';
import { NoQueueError, openSqliteQueue } from '../queue/sqlite/store.js';
import { openBackend, type Backend, type BackendOptions } from './backend.js';
import { actAsDataDirOwner } from './data-owner.js';
import { registerQueueRepair } from './queue-repair.js';
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

export function common(cmd: Command, json = true): Command {
  cmd.option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .option('--direct', 'use the data_dir store even if the server runs');
  if (json) cmd.option('--json', 'JSON output');
  return cmd;
}

/**
 * Loads the config, opens a backend, runs `fn`, maps errors to exit codes. `access` is how a stopped
 * server's store is opened: listings read it without creating any file; actions need it to exist.
 */
export async function withBackend(opts: Common, fn: (b: Backend) => Promise<void>, access: BackendOptions['access'] = 'existing'): Promise<void> {
  let backend: Backend;
  try {
    backend = await openBackend(loadConfig(configFileFrom(opts.config)), { direct: opts.direct, access });
  } catch (err) {
    if (err instanceof NoQueueError) {
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

/** Registers the commands; returns `queue` for cli/queue-tools to add its own. */
export function registerQueueCommands(program: Command): Command {
  const queue = program.command('queue').description('Inspect and manage the queue (through the running server, or data_dir when it is stopped)');
  registerQueueRepair(queue);

  queue.command('migrate')
    .description('Create or migrate the queue\'s schema ([queue] backend: the SQLite file, or the shared PostgreSQL database) and exit')
    .option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .action(async (opts: { config?: string }) => {
      const cfg = loadConfig(configFileFrom(opts.config));
      if (usesPostgres(cfg)) {
        const pool = createPool({ url: cfg.queue.url! });
        try {
          const { from, to } = await migratePg(pool);
          process.stdout.write(from === to ? `queue schema is at version ${to}\n` : `queue schema migrated from version ${from} to ${to}\n`);
        } finally {
          await pool.end();
        }
        return;
      }
      actAsDataDirOwner(cfg.data_dir);
      await (await openSqliteQueue({ dataDir: cfg.data_dir })).close();
      process.stdout.write(`queue schema is at version ${SCHEMA_VERSION} (${cfg.data_dir}/queue/queue.db)\n`);
    });

  common(queue.command('list'))
    .description('List queued messages with each recipient\'s state and last reply')
    .option('--domain <domain>', 'only recipients at this domain')
    .option('--state <state>', `only recipients in this state (${STATES.join(', ')})`)
    .option('--older-than <duration>', 'only messages older than this ("1h")')
    .option('--search <text>', 'only messages whose queue id, sender, a recipient or Message-ID contains this (any case)')
    .action((opts: Common & { domain?: string; state?: string; olderThan?: string; search?: string }) => withBackend(opts, async (b) => {
      const list = await b.list({ domain: opts.domain, state: stateOf(opts.state), olderThanMs: olderThanMs(opts.olderThan), q: opts.search });
      print(opts.json, list, formatQueueList(list, Date.now()));
    }, 'readonly'));

  common(queue.command('show <id>'))
    .description('Show a message: envelope, headers, each recipient with its attempt history')
    .action((id: string, opts: Common) => withBackend(opts, async (b) => {
      const d = await b.show(id);
      print(opts.json, d, formatMessageDetail(d, Date.now()));
    }, 'readonly'));

  common(queue.command('flush [target]'))
    .description('Retry deferred recipients now: all, one domain, or one message id')
    .option('--force', 'also clear the backoff of the destinations involved')
    .action((target: string | undefined, opts: Common & { force?: boolean }) => withBackend(opts, async (b) => {
      const sel = target === undefined ? {} : ID.test(target) ? { id: target } : { domain: target.toLowerCase() };
      const r = await b.flush({ ...sel, force: opts.force });
      const now = Date.now();
      const blocked = r.blocked.map((x) => `\n  ${x.recipients} recipient(s) wait for ${x.destination}: ${x.why === 'suspended' ? 'destination suspended' : `destination backoff, ${age(x.until - now)} left`} (--force clears it)`).join('');
      print(opts.json, r, `${r.flushed} recipient(s) due now${r.reset.length ? `; backoff cleared for ${r.reset.join(', ')}` : ''}${b.kind === 'direct' ? ' (server not running: they go at its next start)' : ''}`
        + `${r.held ? `\n  ${r.held} recipient(s) of a held message: they go when it is released` : ''}${blocked}\n`);
    }));

  for (const [verb, held] of [['hold', true], ['release', false]] as const) {
    common(queue.command(`${verb} [id]`))
      .description(held ? 'Hold a message (or every message to --domain): no delivery until released' : 'Release held messages')
      .option('--domain <domain>', 'every message with a recipient at this domain')
      .action((id: string | undefined, opts: Common & { domain?: string }) => withBackend(opts, async (b) => {
        if ((id === undefined) === (opts.domain === undefined)) throw new UsageError(`give a message id or --domain, not both`);
        const r = await b.hold(id ? { id } : { domain: opts.domain?.toLowerCase() }, held);
        print(opts.json, r, `${r.ids.length} message(s) ${held ? 'held' : 'released'}\n`);
      }));
  }

  common(queue.command('delete [ids...]'))
    .description('Delete messages (no DSN is sent); asks first on a terminal')
    .option('--domain <domain>', 'select every message with a recipient at this domain')
    .option('--state <state>', 'select messages with a recipient in this state')
    .option('-y, --yes', 'do not ask (required when stdin is not a terminal)')
    .action((ids: string[], opts: Common & { domain?: string; state?: string; yes?: boolean }) => withBackend(opts, async (b) => {
      let selected = ids;
      if (opts.domain !== undefined || opts.state !== undefined) {
        if (ids.length > 0) throw new UsageError('give ids or --domain/--state, not both');
        selected = (await b.list({ domain: opts.domain, state: stateOf(opts.state) })).map((e) => e.message.id);
      }
      if (selected.length === 0) throw new UsageError('nothing to delete: give message ids, --domain or --state');
      if (!opts.yes) {
        if (!process.stdin.isTTY) throw new UsageError('refusing to delete without --yes when not on a terminal');
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
    }));

  common(queue.command('bounce <id>'))
    .description('Fail every waiting recipient with 5.0.0 "bounced by administrator"; the sender gets a DSN')
    .action((id: string, opts: Common) => withBackend(opts, async (b) => {
      const r = await b.bounce(id);
      print(opts.json, r, `${r.bounced} recipient(s) bounced${r.skipped ? `, ${r.skipped} in flight left alone` : ''}${b.kind === 'direct' ? ' (the DSN goes when the server runs)' : ''}\n`);
    }));

  const dest = common(program.command('destinations'))
    .description('List destinations: health, backoff, queued recipients and open connections')
    .action((opts: Common) => withBackend(opts, async (b) => {
      const list = await b.destinations();
      print(opts.json, list, formatDestinations(list, Date.now()));
    }, 'readonly'));
  common(dest.command('reset <key>'))
    .description('Clear a destination\'s backoff and make its waiting recipients due now')
    // The parent (`destinations`) has the same options and commander gives them to it: read both.
    .action((key: string, _opts: Common, cmd: Command) => withBackend(cmd.optsWithGlobals<Common>(), async (b) => {
      const opts = cmd.optsWithGlobals<Common>();
      const r = await b.resetDestination(key);
      print(opts.json, r, `${key}: backoff cleared, ${r.flushed} recipient(s) due now\n`);
    }));
  return queue;
}

/**
 * cli/program — every `halcyon` command as commander defines it: names,
 * arguments, options, defaults and descriptions, and nothing else. Each
 * action imports the module that does the work when the command runs (and
 * only then), so `halcyon --version` loads commander and this file, and a
 * read command loads its own module and what that needs — never the server.
 *
 * cli/main parses argv with it. To add a command: define it
 * here with `.action(async (...) => (await import('./x-cmd.js')).run(...))`,
 * and keep the work in x-cmd. Does not read config, open the queue or print.
 */
import { Command } from 'commander';
import { VERSION } from './version.js';

const STATES = 'queued, inflight, delivered, deferred, failed, expired';

/** -c/--config and --direct (and --json), which every queue command takes. */
export function common(cmd: Command, json = true): Command {
  cmd.option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .option('--direct', 'use the data_dir store even if the server runs');
  if (json) cmd.option('--json', 'JSON output');
  return cmd;
}

const configOption = (cmd: Command): Command => cmd.option('-c, --config <file>', 'config file (or HALCYON_CONFIG)');

export function buildProgram(): Command {
  const program = new Command();
  program.name('halcyon').description('Halcyon, a mail transfer agent that never storms a remote host').version(VERSION);

  configOption(program.command('serve'))
    .description('Start Halcyon (embedded defaults when no config file is given)')
    .option('--log-format <format>', 'json or pretty')
    .option('--drain-timeout <duration>', 'on SIGTERM, how long transactions in progress may take to finish', '30s')
    .action(async (opts) => (await import('./serve.js')).serve(opts));

  const config = program.command('config').description('Check and show the configuration');
  configOption(config.command('check [file]'))
    .description('Validate a config file as `serve` would; prints every error with its key path')
    .action(async (file, opts) => (await import('./config-cmd.js')).configCheck(file, opts));
  configOption(config.command('show [keys...]'))
    .description('Print the configuration in force (the running server\'s, else the file\'s), defaults included (TOML); with KEYs (`smtp.max_message_size`), just those, like postconf KEY')
    .option('--json', 'print JSON')
    .option('--changed', 'only settings that differ from the defaults (like postconf -n)')
    .option('--file', 'show the file\'s configuration even when a server is running')
    .option('--value', 'with KEYs: print only the values (like postconf -h)')
    .action(async (keys, opts) => (await import('./config-cmd.js')).configShow(keys, opts));
  config.command('docs')
    .description('Print the configuration reference (docs/configuration.md) generated from the schema')
    .action(async () => (await import('./config-cmd.js')).configDocsCmd());

  program.command('user').description('Accounts for SMTP AUTH')
    .command('add <name>')
    .description('Hash a password (read from stdin, or --password) and print the [[users]] entry')
    .option('--password <password>', 'the password (prefer stdin: it stays out of shell history)')
    .action(async (name, opts) => (await import('./user-cmd.js')).userAdd(name, opts));

  defineQueue(program);

  program.command('dkim').description('DKIM signing keys')
    .command('keygen <domain> <selector>')
    .description('Make a key pair, write the private key, print the TXT record to publish and the [[dkim]] entry')
    .option('--algorithm <name>', 'rsa-sha256 or ed25519-sha256', 'rsa-sha256')
    .option('--bits <n>', 'RSA key size', '2048')
    .option('--out <file>', 'where to write the private key (default: ./DOMAIN.SELECTOR.pem)')
    .option('--arc', 'print an [[arc]] entry (an ARC sealing key, RFC 8617) instead of [[dkim]]')
    .action(async (domain, selector, opts) => (await import('./dkim-cmd.js')).dkimKeygen(domain, selector, opts));

  configOption(program.command('events').description('Recipient events and their sinks (docs/events.md)')
    .command('status'))
    .description('Each event sink and the events waiting for it in the outbox')
    .option('--json', 'JSON output')
    .action(async (opts) => (await import('./events-cmd.js')).eventsStatus(opts));

  const verify = program.command('verify').description('The recipient verification cache (docs/operations.md, "Recipient verification")');
  const verifyOptions = (c: Command): Command => configOption(c).option('--json', 'JSON output');
  verifyOptions(verify.command('list'))
    .description('Every cached answer that has not expired, by address')
    .action(async (opts) => (await import('./verify-cmd.js')).verifyList(opts));
  verifyOptions(verify.command('show <address>'))
    .description('The cached answer for one address (exit code 1 when there is none)')
    .action(async (address, opts) => (await import('./verify-cmd.js')).verifyShow(address, opts));
  verifyOptions(verify.command('forget <address>'))
    .description('Forgets the cached answer for one address: the next RCPT for it is probed again')
    .action(async (address, opts) => (await import('./verify-cmd.js')).verifyForget(address, opts));

  const s = program.command('suppression').description('The suppression list: addresses not tried again after a permanent failure (docs/operations.md)');
  common(s.command('list').description('Entries in force, with why and when').argument('[text]', 'only addresses containing this'))
    .option('--all', 'expired entries too')
    .option('--limit <n>', 'at most this many', (v) => Number(v))
    .action(async (text, opts) => (await import('./suppression-cmd.js')).suppressionList(text, opts));
  common(s.command('add').description('Suppress an address').argument('<address>'))
    .option('--class <class>', 'bounce class (default InvalidRecipient)')
    .option('--reason <text>', 'why (shown as the entry\'s reply)')
    .option('--ttl <duration>', 'how long (default suppression.ttl)')
    .action(async (address, opts) => (await import('./suppression-cmd.js')).suppressionAdd(address, opts));
  common(s.command('remove').description('Take addresses off the list').argument('<address...>'))
    .action(async (addresses, opts) => (await import('./suppression-cmd.js')).suppressionRemove(addresses, opts));
  common(s.command('import').description('Add the entries of a CSV file (the export\'s columns; only address is required)').argument('<file>', 'CSV file, or - for stdin'))
    .action(async (file, opts) => (await import('./suppression-cmd.js')).suppressionImport(file, opts));
  common(s.command('export').description('The list as CSV on stdout (address,class,since,until,source,queue_id,reply)'), false)
    .option('--all', 'expired entries too')
    .action(async (opts) => (await import('./suppression-cmd.js')).suppressionExport(opts));

  program.command('completion <shell>')
    .description('Print the bash or zsh completion script (scripts/install.sh installs both): `source <(halcyon completion bash)`')
    .action(async (shell) => (await import('./completion.js')).completionCmd(shell));

  // Listed for --help; cli/main hands `sendmail` to cli/sendmail before commander sees its flags.
  program.command('sendmail').description('sendmail-compatible submission (-t, -i, -f, -F, -bs …); see `halcyon sendmail --help`')
    .allowUnknownOption().argument('[args...]');
  return program;
}

function defineQueue(program: Command): void {
  const queue = program.command('queue').description('Inspect and manage the queue (through the running server, or data_dir when it is stopped)');

  configOption(queue.command('check'))
    .description('Check the queue file for damage (SQLite quick_check) and for a queue that lost its file')
    .option('--json', 'JSON output')
    .action(async (opts) => (await import('./queue-repair.js')).queueCheck(opts));
  configOption(queue.command('salvage'))
    .description('Copy every readable message of a damaged queue into a fresh one (server stopped); the old file is kept')
    .option('--json', 'JSON output')
    .action(async (opts) => (await import('./queue-repair.js')).queueSalvage(opts));
  configOption(queue.command('migrate'))
    .description('Create or migrate the queue\'s schema ([queue] backend: the SQLite file, or the shared PostgreSQL database) and exit')
    .action(async (opts) => (await import('./queue-cmd.js')).queueMigrate(opts));

  common(queue.command('list'))
    .description('List queued messages with each recipient\'s state and last reply')
    .option('--domain <domain>', 'only recipients at this domain')
    .option('--state <state>', `only recipients in this state (${STATES})`)
    .option('--older-than <duration>', 'only messages older than this ("1h")')
    .option('--search <text>', 'only messages whose queue id, sender, a recipient or Message-ID contains this (any case)')
    .action(async (opts) => (await import('./queue-cmd.js')).queueList(opts));

  common(queue.command('show <id>'))
    .description('Show a message: envelope, headers, each recipient with its attempt history')
    .action(async (id, opts) => (await import('./queue-cmd.js')).queueShow(id, opts));

  common(queue.command('flush [target]'))
    .description('Retry deferred recipients now: all, one domain, or one message id')
    .option('--force', 'also clear the backoff of the destinations involved')
    .action(async (target, opts) => (await import('./queue-cmd.js')).queueFlush(target, opts));

  for (const [verb, held] of [['hold', true], ['release', false]] as const) {
    common(queue.command(`${verb} [id]`))
      .description(held ? 'Hold a message (or every message to --domain): no delivery until released' : 'Release held messages')
      .option('--domain <domain>', 'every message with a recipient at this domain')
      .action(async (id, opts) => (await import('./queue-cmd.js')).queueHold(id, opts, held));
  }

  common(queue.command('delete [ids...]'))
    .description('Delete messages (no DSN is sent); asks first on a terminal. `-` reads the ids from stdin, one per line (postsuper -d -)')
    .option('--domain <domain>', 'select every message with a recipient at this domain')
    .option('--state <state>', 'select messages with a recipient in this state')
    .option('-y, --yes', 'do not ask (required when stdin is not a terminal)')
    .action(async (ids, opts) => (await import('./queue-cmd.js')).queueDelete(ids, opts));

  common(queue.command('bounce [ids...]'))
    .description('Fail every waiting recipient with 5.0.0 "bounced by administrator"; each sender gets a DSN. Messages by id, `-` (ids from stdin, one per line), --domain or --state')
    .option('--domain <domain>', 'every message with a recipient at this domain')
    .option('--state <state>', 'every message with a recipient in this state')
    .action(async (ids, opts) => (await import('./queue-cmd.js')).queueBounce(ids, opts));

  common(queue.command('shape'))
    .description('qshape: waiting recipients per domain × age of their message (0-5, 5-10 … 1280+ minutes), held ones apart; --by sender-domain counts messages per sender domain (qshape -s)')
    .option('--by <key>', `domain (the recipient's, default), destination (the MX host set a running server maps it to; a stopped server's queue knows its domain or route) or sender-domain (messages by their sender's domain, the null sender as MAILER-DAEMON: qshape -s)`, 'domain')
    .action(async (opts) => (await import('./queue-tools.js')).queueShape(opts));

  common(queue.command('cat <id>'))
    .description('postcat: a queued message\'s envelope (recipients with every reply), headers and body; control characters are shown escaped')
    // postcat's -h is "headers": help stays on --help.
    .helpOption('--help', 'display help for command')
    .option('-e, --envelope', 'the envelope and recipients only')
    .option('-h, --headers', 'the header block only')
    .option('-b, --body', 'the body only')
    .option('--raw', 'the stored bytes (whole message, or -h / -b part) as they are, for saving to a file')
    .action(async (id, opts) => (await import('./queue-tools.js')).queueCat(id, opts));

  common(program.command('mailq'), false)
    .description('The queue as Postfix\'s mailq (postqueue -p) prints it: waiting recipients under their last reply; also run as `mailq` through a link')
    .action(async (opts) => (await import('./mailq.js')).mailq(opts));

  configOption(program.command('newaliases'))
    .description('Read the aliases file ([aliases] file) again: a running server takes it at once (it also sees a change by itself); with none answering, the file is checked. Prints each refused entry; also run as `newaliases` through a link')
    .action(async (opts) => (await import('./newaliases-cmd.js')).newaliases(opts));

  configOption(program.command('shaping').description('Provider shaping (docs/shaping.md)')
    .command('explain <domain>'))
    .description('How mail to DOMAIN is shaped: its MX set (configured resolver), the provider preset that matches and why, the effective limits and rules')
    .option('--json', 'JSON output')
    .action(async (domain, opts) => (await import('./shaping-cmd.js')).shapingExplain(domain, opts));

  const dest = common(program.command('destinations'))
    .description('List destinations: health, backoff, queued recipients and open connections; below, limits, rules in force and the tenants waiting at each (suspended or over their rate, until when, why)')
    .action(async (opts) => (await import('./queue-cmd.js')).destinationsList(opts));
  const tenant = program.command('tenant').description('Tenant limits: suspensions, rates and weights (docs/shaping.md)');
  common(tenant.command('list'))
    .description('Tenants suspended (where, until when, why), the configured tenants\' rate and weight (and, on a running server, which are over their rate), waiting recipients per tenant and domain')
    .action(async (opts) => (await import('./tenant-cmd.js')).tenantList(opts));
  common(tenant.command('suspend <name>'))
    .description('Suspend a tenant: its mail waits (no attempt counted, no bounce) while other tenants\' goes on; every node honours it within a second')
    .option('--destination <key>', 'only at this destination key or one of its domains (as `halcyon destinations` lists them), or provider:NAME')
    .option('--for <duration>', 'for this long ("2h"); default until resumed')
    .action(async (name, opts) => (await import('./tenant-cmd.js')).tenantSuspend(name, opts));
  common(tenant.command('resume <name>'))
    .description('End a tenant\'s suspensions (an administrator\'s or a suspend_tenant rule\'s): everywhere, or at --destination only')
    .option('--destination <key>', 'only the suspension at this destination key, domain or provider:NAME (as it was suspended)')
    .action(async (name, opts) => (await import('./tenant-cmd.js')).tenantResume(name, opts));
  common(dest.command('reset <key>'))
    .description('Clear a destination\'s backoff and make its waiting recipients due now')
    // The parent (`destinations`) has the same options and commander gives them to it: read both.
    .action(async (key, _opts, cmd: Command) => (await import('./queue-cmd.js')).destinationReset(key, cmd.optsWithGlobals()));
}

#!/bin/sh
// 2>/dev/null; self=$(readlink -f -- "$0") && dir=${self%/dist/src/cli/main.js} || exit 1
// 2>/dev/null; while [ -n "$dir" ]; do [ -x "$dir/node_modules/.bin/node" ] && exec "$dir/node_modules/.bin/node" "$0" "$@"; dir=${dir%/*}; done
// 2>/dev/null; node -e 'process.exit(+process.versions.node.split(".")[0] < 24)' 2>/dev/null && exec node "$0" "$@"
// 2>/dev/null; echo "halcyon: needs Node 24 or later: run npm ci in ${self%/dist/src/cli/main.js} (it installs Node 24 into node_modules)" >&2; exit 1
/**
 * cli/main — the `halcyon` command: parses argv with commander and calls the
 * subcommand modules. No logic of its own beyond wiring and exit codes.
 *
 * The four lines above are a shell launcher, comments to JavaScript. Run as
 * a program (the npm bin, or a link to it such as `sendmail`), /bin/sh finds
 * the Node that `npm ci` installed beside this file (node_modules/.bin/node,
 * Node 24; docs/decisions/0008-node-24-and-node-sqlite.md) and execs it on
 * this file, so the command never runs on an older `node` first on PATH.
 * Only where the package has no Node of its own (no node-<os>-<cpu> package
 * for the platform) does it take PATH's node, and only at 24 or later. The
 * link's name stays in argv[1] for the `sendmail` check below. The process
 * title is `halcyon`, so `pidof halcyon` finds the server.
 */
import { basename } from 'node:path';
import { Command } from 'commander';
import { registerConfigCommands } from './config-cmd.js';
import { registerDkimCommands } from './dkim-cmd.js';
import { registerEventCommands } from './events-cmd.js';
import { registerQueueCommands } from './queue-cmd.js';
import { registerQueueTools } from './queue-tools.js';
import { registerServe } from './serve.js';
import { registerSuppressionCommands } from './suppression-cmd.js';
import { sendmailMain } from './sendmail.js';
import { registerUserCommands } from './user-cmd.js';
import { registerVerifyCommands } from './verify-cmd.js';

process.title = 'halcyon';

const invokedAs = basename(process.argv[1] ?? '');
const sendmailArgs = invokedAs === 'sendmail' ? process.argv.slice(2) : process.argv[2] === 'sendmail' ? process.argv.slice(3) : undefined;

if (sendmailArgs) {
  sendmailMain(sendmailArgs).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`sendmail: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 75; // EX_TEMPFAIL: the caller (cron, PHP) may try again
  });
} else {
  const program = new Command();
  program.name('halcyon').description('Halcyon, a mail transfer agent that never storms a remote host').version('0.1.0');
  registerServe(program);
  registerConfigCommands(program);
  registerUserCommands(program);
  registerQueueTools(registerQueueCommands(program));
  registerDkimCommands(program);
  registerEventCommands(program);
  registerVerifyCommands(program);
  registerSuppressionCommands(program);
  // Listed for --help; the real parsing happens above, before commander sees sendmail's flags.
  program.command('sendmail').description('sendmail-compatible submission (-t, -i, -f, -F, -bs …); see `halcyon sendmail --help`')
    .allowUnknownOption().argument('[args...]');

  program.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`halcyon: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

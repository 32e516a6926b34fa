#!/usr/bin/env node
/**
 * cli/main — the `halcyon` command: parses argv with commander and calls the
 * subcommand modules. No logic of its own beyond wiring and exit codes.
 *
 * Invoked under the name `sendmail` (a symlink: `ln -s …/dist/src/cli/main.js
 * /usr/local/sbin/sendmail`) it behaves as `halcyon sendmail`; sendmail's
 * flags (-t, -oi, -fme …) are parsed by cli/sendmail, not commander.
 */
import { basename } from 'node:path';
import { Command } from 'commander';
import { registerConfigCommands } from './config-cmd.js';
import { registerDkimCommands } from './dkim-cmd.js';
import { registerEventCommands } from './events-cmd.js';
import { registerQueueCommands } from './queue-cmd.js';
import { registerQueueTools } from './queue-tools.js';
import { registerServe } from './serve.js';
import { sendmailMain } from './sendmail.js';
import { registerUserCommands } from './user-cmd.js';

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
  // Listed for --help; the real parsing happens above, before commander sees sendmail's flags.
  program.command('sendmail').description('sendmail-compatible submission (-t, -i, -f, -F, -bs …); see `halcyon sendmail --help`')
    .allowUnknownOption().argument('[args...]');

  program.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`halcyon: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

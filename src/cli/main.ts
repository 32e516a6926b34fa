#!/usr/bin/env node
/**
 * cli/main — the `halcyon` command: parses argv with commander and calls the
 * subcommand modules. No logic of its own beyond wiring and exit codes.
 */
import { Command } from 'commander';
import { registerConfigCommands } from './config-cmd.js';
import { registerQueueCommands } from './queue-cmd.js';
import { registerServe } from './serve.js';
import { registerUserCommands } from './user-cmd.js';

const program = new Command();
program.name('halcyon').description('Halcyon, a mail transfer agent that never storms a remote host').version('0.1.0');
registerServe(program);
registerConfigCommands(program);
registerUserCommands(program);
registerQueueCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`halcyon: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

/**
 * cli/user-cmd — `halcyon user add NAME`: makes a scrypt password hash and
 * prints the `[[users]]` entry to paste into the config.
 */
import type { Command } from 'commander';
import { hashPassword } from '../inbound/auth.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerUserCommands(program: Command): void {
  const user = program.command('user').description('Accounts for SMTP AUTH');
  user.command('add <name>')
    .description('Hash a password (read from stdin, or --password) and print the [[users]] entry')
    .option('--password <password>', 'the password (prefer stdin: it stays out of shell history)')
    .action(async (name: string, opts: { password?: string }) => {
      const password = opts.password ?? await readStdin();
      if (!password) throw new Error('empty password');
      process.stdout.write(`[[users]]\nname = ${JSON.stringify(name)}\npassword_hash = ${JSON.stringify(hashPassword(password))}\n`);
    });
}

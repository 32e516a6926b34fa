/**
 * cli/user-cmd — `halcyon user add NAME`: makes a scrypt password hash and
 * prints the `[[users]]` entry to paste into the config.
 */
import { hashPassword } from '../inbound/auth.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** `halcyon user add NAME`. */
export async function userAdd(name: string, opts: { password?: string }): Promise<void> {
  const password = opts.password ?? await readStdin();
  if (!password) throw new Error('empty password');
  process.stdout.write(`[[users]]\nname = ${JSON.stringify(name)}\npassword_hash = ${JSON.stringify(hashPassword(password))}\n`);
}

/**
 * cli/dkim-cmd — `halcyon dkim keygen DOMAIN SELECTOR [--algorithm …]`: makes
 * a DKIM key pair, writes the private key (mode 0600, never over an existing
 * file) and prints the DNS TXT record to publish and the `[[dkim]]` entry (with
 * `--arc`, the `[[arc]]` entry of an ARC sealing key: the same kind of key and
 * record) to paste into the config. docs/authentication.md walks through the rest.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DkimAlgorithm } from '../intake/dkim.js';
import { zoneStrings } from '../intake/dkim.js';
import { generateDkimKey } from '../intake/dkim-keys.js';

const ALGORITHMS: readonly DkimAlgorithm[] = ['rsa-sha256', 'ed25519-sha256'];

/** `halcyon dkim keygen DOMAIN SELECTOR`. */
export function dkimKeygen(domain: string, selector: string, opts: { algorithm: string; bits: string; out?: string; arc?: boolean }): void {
  const algorithm = opts.algorithm as DkimAlgorithm;
  if (!ALGORITHMS.includes(algorithm)) throw new Error(`--algorithm must be one of ${ALGORITHMS.join(', ')}`);
  const bits = Number(opts.bits);
  if (!Number.isInteger(bits) || bits < 1024 || bits > 8192) throw new Error('--bits must be an integer from 1024 to 8192');
  const d = domain.toLowerCase().replace(/\.$/, '');
  const file = resolve(opts.out ?? `${d}.${selector}.pem`);
  const key = generateDkimKey(algorithm, bits);
  // 'wx': never replace a key that may already be published and in use.
  writeFileSync(file, key.pem, { mode: 0o600, flag: 'wx' });
  process.stdout.write(
    `# private key written to ${file}\n` +
    `# publish this TXT record:\n` +
    `${selector}._domainkey.${d}. IN TXT ( ${zoneStrings(key.txt)} )\n\n` +
    `# and add to the config:\n` +
    `[[${opts.arc ? 'arc' : 'dkim'}]]\ndomain = ${JSON.stringify(d)}\nselector = ${JSON.stringify(selector)}\nkey = ${JSON.stringify(file)}\n` +
    (algorithm === 'rsa-sha256' ? '' : `algorithm = ${JSON.stringify(algorithm)}\n`),
  );
}

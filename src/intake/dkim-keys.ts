/**
 * intake/dkim-keys — the I/O around DKIM keys: loading the `[[dkim]]`
 * entries' PEM files into signing keys (at start and on reload; a missing,
 * unreadable or mismatched key is a configuration error, never a silently
 * unsigned message), and making a new key pair for `halcyon dkim keygen`.
 *
 * Signing itself is intake/dkim's (pure).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigProblem } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { dkimTxtRecord, signedHeaders, type DkimAlgorithm, type DkimKey } from './dkim.js';

const KEY_TYPE: Readonly<Record<DkimAlgorithm, string>> = { 'rsa-sha256': 'rsa', 'ed25519-sha256': 'ed25519' };

/** Loads every `[[dkim]]` (or `[[arc]]`, `section`) entry's key; throws one ConfigError naming every entry that is wrong. */
export function loadDkimKeys(entries: Config['dkim'] | Config['arc'], section: 'dkim' | 'arc' = 'dkim'): DkimKey[] {
  const keys: DkimKey[] = [];
  const problems: ConfigProblem[] = [];
  entries.forEach((e, i) => {
    const path = `${section}.${i}.key`;
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(readFileSync(e.key));
    } catch (err) {
      problems.push({ path, message: `cannot load ${e.key}: ${(err as Error).message}` });
      return;
    }
    const want = KEY_TYPE[e.algorithm];
    if (privateKey.asymmetricKeyType !== want) {
      problems.push({ path, message: `${e.key} is a ${privateKey.asymmetricKeyType ?? 'unknown'} key, but algorithm is ${e.algorithm} (needs ${want})` });
      return;
    }
    if (want === 'rsa' && (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) < 1024) {
      problems.push({ path, message: `${e.key}: RSA keys shorter than 1024 bits are refused by verifiers (RFC 8301)` });
      return;
    }
    keys.push({ domain: e.domain.toLowerCase().replace(/\.$/, ''), selector: e.selector, algorithm: e.algorithm, privateKey, headers: signedHeaders('headers' in e ? (e as Config['dkim'][number]).headers : undefined) });
  });
  if (problems.length > 0) throw new ConfigError(undefined, problems);
  return keys;
}

export interface GeneratedKey {
  /** PKCS#8 PEM of the private key, to be written with mode 0600. */
  readonly pem: string;
  /** The TXT record's value for SELECTOR._domainkey.DOMAIN. */
  readonly txt: string;
}

/** A new key pair: RSA (2048 bits by default) or Ed25519. */
export function generateDkimKey(algorithm: DkimAlgorithm, bits = 2048): GeneratedKey {
  const { privateKey } = algorithm === 'ed25519-sha256'
    ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    txt: dkimTxtRecord(createPublicKey(privateKey)),
  };
}

/**
 * inbound/tls-cert — the TLS context for STARTTLS: the configured PEM files,
 * or a self-signed certificate generated once into data_dir and reused
 * (kept in memory only when the disk is too full to write it).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import type { ConfigProblem } from '../config/load.js';

/** Configured cert/key files that cannot be read or do not make a key pair (what would stop `serve`). */
export function tlsFileProblems(t: { cert?: string; key?: string }): ConfigProblem[] {
  if (!t.cert || !t.key) return [];
  const problems: ConfigProblem[] = [];
  const read = (path: 'tls.cert' | 'tls.key', file: string): Buffer | undefined => {
    try {
      return readFileSync(file);
    } catch (err) {
      problems.push({ path, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      return undefined;
    }
  };
  const cert = read('tls.cert', t.cert);
  const key = read('tls.key', t.key);
  if (cert && key) {
    try {
      tls.createSecureContext({ cert, key });
    } catch (err) {
      problems.push({ path: 'tls', message: `cert and key do not make a TLS context: ${(err as Error).message}` });
    }
  }
  return problems;
}

export async function loadTlsContext(opts: { cert?: string; key?: string; dataDir: string; hostname: string }): Promise<tls.SecureContext> {
  if (opts.cert && opts.key) {
    return tls.createSecureContext({ cert: readFileSync(opts.cert), key: readFileSync(opts.key) });
  }
  const dir = join(opts.dataDir, 'tls');
  const certFile = join(dir, 'selfsigned.crt');
  const keyFile = join(dir, 'selfsigned.key');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true });
    const pems = await generate([{ name: 'commonName', value: opts.hostname }], {
      keyType: 'ec', curve: 'P-256', notAfterDate: new Date(Date.now() + 3650 * 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: opts.hostname }, { type: 7, ip: '127.0.0.1' }] }],
    });
    try {
      writeFileSync(keyFile, pems.private, { mode: 0o600 });
      writeFileSync(certFile, pems.cert);
    } catch {
      // A full disk must not stop the start (issue 10): use the certificate from memory; the next start writes it.
      rmSync(keyFile, { force: true });
      rmSync(certFile, { force: true });
      return tls.createSecureContext({ cert: pems.cert, key: pems.private });
    }
  }
  return tls.createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
}

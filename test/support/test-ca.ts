/**
 * test/support/test-ca — a throwaway certificate authority for TLS tests,
 * made with the `selfsigned` package Halcyon already uses for its own
 * certificate: a CA certificate (to give Halcyon as `[delivery] tls_ca_file`)
 * and leaf certificates it signs for the names a test chooses (subjectAltName
 * DNS entries). The CA file lives in a temp dir the caller removes; nothing is
 * installed or trusted system-wide.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface TestCa {
  readonly caFile: string;
  readonly caPem: string;
  /** A key and a certificate for `names` (the first is also the CN), signed by this CA. */
  issue(names: readonly string[]): Promise<{ key: string; cert: string }>;
  remove(): void;
}

export async function makeTestCa(): Promise<TestCa> {
  const ca = await generate([{ name: 'commonName', value: 'Halcyon Test CA' }], {
    keySize: 2048, notAfterDate: new Date(Date.now() + 2 * 86_400_000), algorithm: 'sha256',
    extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }],
  });
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-ca-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.cert);
  return {
    caFile,
    caPem: ca.cert,
    async issue(names) {
      const leaf = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
        keySize: 2048, notAfterDate: new Date(Date.now() + 2 * 86_400_000), algorithm: 'sha256', ca: { key: ca.private, cert: ca.cert },
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) },
        ],
      });
      return { key: leaf.private, cert: leaf.cert };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

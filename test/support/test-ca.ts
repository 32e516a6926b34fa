/**
 * test/support/test-ca — a throwaway certificate authority for TLS tests,
 * made with the `openssl` command: a CA certificate (to give Halcyon as
 * `[delivery] tls_ca_file`) and leaf certificates it signs for the names a
 * test chooses (subjectAltName DNS entries). Everything lives in a temp dir the
 * caller removes; nothing is installed or trusted system-wide.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  readonly caFile: string;
  readonly caPem: string;
  /** A key and a certificate for `names` (the first is also the CN), signed by this CA. */
  issue(names: readonly string[]): { key: string; cert: string };
  remove(): void;
}

export function makeTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-ca-'));
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Halcyon Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  let n = 0;
  return {
    caFile: join(dir, 'ca.pem'),
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    issue(names) {
      n++;
      writeFileSync(join(dir, `leaf${n}.ext`), `subjectAltName=${names.map((x) => `DNS:${x}`).join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `leaf${n}.key`, '-out', `leaf${n}.csr`, '-subj', `/CN=${names[0] ?? 'localhost'}`);
      ossl('x509', '-req', '-in', `leaf${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `leaf${n}.pem`, '-days', '2', '-extfile', `leaf${n}.ext`);
      return { key: readFileSync(join(dir, `leaf${n}.key`), 'utf8'), cert: readFileSync(join(dir, `leaf${n}.pem`), 'utf8') };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

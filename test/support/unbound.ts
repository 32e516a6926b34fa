/**
 * test/support/unbound — a private Debian `unbound` on a loopback port, for
 * DANE tests: it serves zones written by the test, signs the ones asked
 * with keys made on the spot (ldnsutils: ldns-keygen, ldns-signzone), trusts
 * their key-signing key's DS as its only trust anchor, and validates
 * (`validate: false` makes it a plain, non-validating recursive resolver
 * over the same zones).
 *
 * ```ts
 * const ub = await startUnbound({
 *   signed: [{ origin: 'dane.test', records: ['good MX 10 mx.good', 'mx.good A 127.0.0.1'],
 *              tamper: ['mx.bogus.dane.test TLSA'] }],   // data changed after signing: bogus
 *   unsigned: [{ origin: 'plain.test', records: ['@ MX 10 mx', 'mx A 127.0.0.1'] }],
 * });
 * ub.address; // "127.0.0.1:PORT", for [dns] servers
 * ```
 *
 * How it works here (see /work/shared/notes/node24-rabbitmq-unbound.md):
 * `local-zone: "test." nodefault` (unbound answers .test NXDOMAIN by default,
 * RFC 6761), each zone an `auth-zone` with `for-upstream: yes` so unbound
 * answers from it as if from the authority and validates the answer; names
 * outside the zones would go to the root servers, which are unreachable
 * here (the test never asks them). Not installed → `unboundMissing()` says
 * why, and the test skips (or fails under HALCYON_REQUIRE_INTEROP=1).
 * Nothing is left behind: `close()` stops the process and removes its dir.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDnssecQuery } from '../../src/delivery/dnssec-query.js';
import { freeLoopbackPort } from './postfix-instance.js';

export const UNBOUND = '/usr/sbin/unbound';

export interface TestZone {
  /** "dane.test" */
  readonly origin: string;
  /** Zone file lines relative to the origin ("mx.good A 127.0.0.1"); SOA and NS are added. */
  readonly records: readonly string[];
  /** "owner.fqdn TYPE": that record's data is changed after signing, so it fails validation (bogus). */
  readonly tamper?: readonly string[];
}

export interface UnboundOptions {
  readonly signed?: readonly TestZone[];
  readonly unsigned?: readonly TestZone[];
  /** false → no validator module and no trust anchor: AD is never set, bogus data is served. Default true. */
  readonly validate?: boolean;
}

export interface TestUnbound {
  /** "127.0.0.1:PORT" */
  readonly address: string;
  readonly port: number;
  /** unbound's own log (validation failures are logged with their reason). */
  log(): string;
  close(): Promise<void>;
}

/** Why unbound cannot run here, or undefined when it can. */
export function unboundMissing(): string | undefined {
  if (!existsSync(UNBOUND)) return 'unbound is not installed';
  if (spawnSync('ldns-signzone', ['-v'], { encoding: 'utf8' }).error) return 'ldnsutils (ldns-signzone) is not installed';
  return undefined;
}

function zoneText(z: TestZone): string {
  return [
    `$ORIGIN ${z.origin}.`, '$TTL 300',
    `@ IN SOA ns.${z.origin}. hostmaster.${z.origin}. 1 3600 600 86400 300`,
    `@ IN NS ns.${z.origin}.`, 'ns IN A 127.0.0.1',
    ...z.records.map((r) => r.replace(/^(\S+)\s+(?!IN\b)/, '$1 IN ')),
  ].join('\n') + '\n';
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout.trim();
}

/** Changes the last character of the named record's data in a signed zone file (its RRSIG then no longer matches). */
function tamper(signed: string, target: string): string {
  const [owner = '', type = ''] = target.split(/\s+/);
  const lines = signed.split('\n');
  const at = lines.findIndex((l) => {
    const f = l.split(/\s+/);
    return f[0]?.toLowerCase() === `${owner.toLowerCase().replace(/\.$/, '')}.` && f[3] === type.toUpperCase();
  });
  if (at < 0) throw new Error(`tamper: no ${type} record for ${owner} in the signed zone`);
  const line = lines[at]!;
  lines[at] = line.slice(0, -1) + (line.endsWith('0') ? '1' : '0');
  return lines.join('\n');
}

/** Signs a zone in `dir`; returns the signed file and the KSK's DS record (the trust anchor). */
function signZone(dir: string, z: TestZone): { file: string; ds: string } {
  const file = join(dir, `${z.origin}.zone`);
  writeFileSync(file, zoneText(z));
  const ksk = run('ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', z.origin], dir);
  const zsk = run('ldns-keygen', ['-a', 'ECDSAP256SHA256', z.origin], dir);
  run('ldns-signzone', ['-n', file, ksk, zsk], dir);
  let signed = readFileSync(`${file}.signed`, 'utf8');
  for (const t of z.tamper ?? []) signed = tamper(signed, t);
  writeFileSync(`${file}.signed`, signed);
  return { file: `${file}.signed`, ds: readFileSync(join(dir, `${ksk}.ds`), 'utf8').trim() };
}

export async function startUnbound(o: UnboundOptions): Promise<TestUnbound> {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-unbound-'));
  const validate = o.validate !== false;
  const signed = (o.signed ?? []).map((z) => ({ z, ...signZone(dir, z) }));
  const unsigned = (o.unsigned ?? []).map((z) => {
    const file = join(dir, `${z.origin}.zone`);
    writeFileSync(file, zoneText(z));
    return { z, file };
  });
  const port = await freeLoopbackPort();
  const conf = [
    'server:',
    `  interface: 127.0.0.1@${port}`,
    '  do-daemonize: no', '  username: ""', '  chroot: ""', `  directory: "${dir}"`, '  pidfile: ""',
    '  use-syslog: no', `  logfile: "${join(dir, 'unbound.log')}"`, '  verbosity: 1', '  val-log-level: 2',
    '  do-ip6: no', '  access-control: 127.0.0.0/8 allow',
    `  module-config: "${validate ? 'validator iterator' : 'iterator'}"`,
    ...(validate ? signed.map((s) => `  trust-anchor: "${s.ds}"`) : []),
    '  local-zone: "test." nodefault',
    ...[...signed, ...unsigned].flatMap(({ z, file }) => [
      'auth-zone:', `  name: "${z.origin}"`, `  zonefile: "${file}"`, '  for-upstream: yes', '  for-downstream: no',
    ]),
  ].join('\n') + '\n';
  const confFile = join(dir, 'unbound.conf');
  writeFileSync(confFile, conf);
  run('unbound-checkconf', [confFile], dir);

  const out = openSync(join(dir, 'stdout.log'), 'a');
  const child: ChildProcess = spawn(UNBOUND, ['-d', '-c', confFile], { stdio: ['ignore', out, out] });
  closeSync(out);
  let exited = false;
  child.once('exit', () => { exited = true; });

  // Ready when it answers a question about its first zone (at most 100 tries of 100 ms).
  const ask = createDnssecQuery([{ host: '127.0.0.1', port }], 100);
  const probe = signed[0]?.z.origin ?? unsigned[0]?.z.origin ?? 'test';
  let ready = false;
  for (let i = 0; i < 100 && !ready && !exited; i++) {
    ready = await ask(probe, 'A').then(() => true, () => false);
  }
  const log = (): string => [join(dir, 'stdout.log'), join(dir, 'unbound.log')].map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('');
  if (!ready) {
    child.kill('SIGKILL');
    const text = log();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`unbound did not start on 127.0.0.1:${port}: ${text.slice(-2000)}`);
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    log,
    async close() {
      if (!exited) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

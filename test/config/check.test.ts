/**
 * test/config/check — `halcyon config check` refuses every value `serve`
 * would fail on, each with its key path and what is allowed: next-hop ports,
 * relay CIDRs, resolver addresses, TLS files, mailbox names that would climb
 * out of data_dir, TOML syntax errors with line and column, enum values in a
 * route table; and it takes `-c FILE` like every other subcommand.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../support/halcyon.js';

const dir = mkdtempSync(join(tmpdir(), 'halcyon-check-'));
let n = 0;
function check(toml: string, how: 'positional' | '-c' = 'positional'): { status: number | null; out: string } {
  const file = join(dir, `c${n++}.toml`);
  writeFileSync(file, toml);
  const r = spawnSync(process.execPath, [CLI, 'config', 'check', ...(how === '-c' ? ['-c', file] : [file])], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('config check is the truth', () => {
  test('a route port out of 1–65535 is refused with its key path', () => {
    for (const route of ['"127.0.0.1:99999"', '"127.0.0.1:0"', '["127.0.0.1:25", "127.0.0.1:70000"]', '{ hosts = ["[::1]:65536"] }']) {
      const r = check(`[routes]\n"a.test" = ${route}\n`);
      assert.equal(r.status, 2, `${route}: ${r.out}`);
      assert.match(r.out, /routes\.a\.test(\.\d|\.hosts\.\d)?: port must be 1–65535/, route);
    }
    assert.equal(check('[routes]\n"a.test" = "127.0.0.1:65535"\n').status, 0);
  });

  test('relay.networks: a bad prefix or a non-address is refused with its index and the allowed form', () => {
    for (const bad of ['10.0.0.0/33', 'not-a-cidr', '::1/129', '10.0.0.0/', '10.0.0.0/-1']) {
      const r = check(`[relay]\nnetworks = ["127.0.0.0/8", "${bad}"]\n`);
      assert.equal(r.status, 2, `${bad}: ${r.out}`);
      assert.match(r.out, /relay\.networks\.1: expected an IP address or CIDR: IPv4 prefix 0–32/, bad);
    }
    assert.equal(check('[relay]\nnetworks = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]\n').status, 0);
  });

  test('dns.servers and listeners: bad addresses and ports are refused', () => {
    assert.match(check('[dns]\nservers = ["127.0.0.1:99999"]\n').out, /dns\.servers\.0: expected an IP address/);
    assert.match(check('[dns]\nservers = ["resolver.example"]\n').out, /dns\.servers\.0: expected an IP address/);
    assert.match(check('[smtp]\nlisten = ["127.0.0.1:70000"]\n').out, /smtp\.listen\.0: port must be 0–65535/);
  });

  test('a TOML syntax error keeps its line and column', () => {
    const r = check('hostname = "mx.test"\n[smtp]\nmax_recipients = \n');
    assert.equal(r.status, 2);
    assert.match(r.out, /\(toml\): line 3, column \d+: /, r.out);
  });

  test('an enum inside a route table lists the allowed values, not "Invalid input"', () => {
    const r = check('[routes]\n"c.test" = { hosts = ["127.0.0.1:25"], tls = "must" }\n');
    assert.equal(r.status, 2);
    assert.match(r.out, /routes\.c\.test\.tls: .*"none"\|"opportunistic"\|"required"\|"verify"/, r.out);
    assert.doesNotMatch(r.out, /Invalid input$/m);
    assert.match(check('[routes]\n"c.test" = 25\n').out, /routes\.c\.test: expected string or array or object/);
  });

  test('TLS: cert without key, and unreadable files, are refused as serve would', () => {
    assert.match(check('[tls]\ncert = "/etc/hostname"\n').out, /tls: set both cert and key/);
    const r = check(`[tls]\ncert = "${join(dir, 'missing.crt')}"\nkey = "${join(dir, 'missing.key')}"\n`);
    assert.equal(r.status, 2);
    assert.match(r.out, /tls\.cert: cannot read .*ENOENT/);
  });

  test('mailbox and domain names that would leave data_dir are refused', () => {
    const r = check('[[domains]]\nname = "../etc"\nmailboxes = [{ user = ".." }]\n');
    assert.equal(r.status, 2);
    assert.match(r.out, /domains\.0\.name: may not be/);
    assert.match(r.out, /domains\.0\.mailboxes\.0\.user: may not be/);
  });

  test('hostname must be a host name: nothing that would break the greeting line', () => {
    assert.match(check('hostname = "mx test\\r\\n250 x"\n').out, /hostname: expected a host name/);
  });

  test('`config check -c FILE` is accepted like every other subcommand', () => {
    const bad = check('[relay]\nnetworks = ["not-a-cidr"]\n', '-c');
    assert.equal(bad.status, 2, bad.out);
    assert.match(bad.out, /relay\.networks\.0/);
    const good = check('hostname = "mx.example.test"\n', '-c');
    assert.equal(good.status, 0, good.out);
    assert.match(good.out, /: ok/);
  });

  test('cleanup', () => rmSync(dir, { recursive: true, force: true }));
});

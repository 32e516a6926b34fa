/**
 * `halcyon shaping explain DOMAIN` over a real resolver: a DNS server on
 * loopback (test/support/dns-server, named in the config's [dns] servers)
 * answers the MX question; the command prints the MX set, the provider preset
 * that matches and why, the effective limits and the rules with their
 * sources — and says why when no preset matches. An operator's override shows.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { runCli } from '../support/halcyon.js';

let dns: TestDnsServer;
let dir: string;

before(async () => {
  dns = await startDnsServer({
    'example.test': { MX: [{ preference: 5, exchange: 'aspmx.l.google.com' }, { preference: 10, exchange: 'alt1.aspmx.l.google.com' }] },
    'yahoo.test': { MX: [{ preference: 1, exchange: 'mta5.am0.yahoodns.net' }] },
    'plain.test': { MX: [{ preference: 10, exchange: 'mx.plain.test' }] },
  });
  dir = mkdtempSync(join(tmpdir(), 'halcyon-shaping-'));
});
after(async () => {
  await dns.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(extra = ''): string {
  const file = join(dir, `h${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, `data_dir = "${dir}"\n[dns]\nservers = ["${dns.address}"]\ntimeout = "2s"\n${extra}`);
  return file;
}

describe('halcyon shaping explain', () => {
  test('a Google Workspace domain: its MX set, the google preset and why, limits, rules with sources', async () => {
    const r = await runCli(['shaping', 'explain', 'example.test', '-c', config()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /MX set: +aspmx\.l\.google\.com, alt1\.aspmx\.l\.google\.com/);
    assert.match(r.stdout, /destination: +mx:alt1\.aspmx\.l\.google\.com,aspmx\.l\.google\.com/);
    assert.match(r.stdout, /provider: +google \(data\/providers\.toml\)/);
    assert.match(r.stdout, /why: +alt1\.aspmx\.l\.google\.com matches \*\.google\.com; aspmx\.l\.google\.com matches \*\.google\.com/);
    assert.match(r.stdout, /connections: +5 /);
    assert.match(r.stdout, /messages per connection: +50/);
    assert.match(r.stdout, /rate: +600\/min, shared by provider:google/);
    assert.match(r.stdout, /TLS: +required/);
    assert.match(r.stdout, /providers\.google\.rules\[0\] action=slow_down .*4\\\.7\\\.28.* — acts on provider:google/);
    assert.match(r.stdout, /source: https:\/\/support\.google\.com\/a\/answer\/3726730/);
  });

  test('--json; an operator\'s override and a disabled provider; no preset says why', async () => {
    const file = config('[shaping.providers.google]\nmax_connections = 2\n[shaping.providers.yahoo]\nenabled = false\n');
    const g = JSON.parse((await runCli(['shaping', 'explain', 'example.test', '--json', '-c', file])).stdout) as { provider: { origin: string }; limits: { connections: number } };
    assert.equal(g.limits.connections, 2);
    assert.match(g.provider.origin, /overridden in halcyon\.toml/);
    const y = await runCli(['shaping', 'explain', 'yahoo.test', '-c', file]);
    assert.match(y.stdout, /provider: +none — no provider's suffixes cover every host of mta5\.am0\.yahoodns\.net/);
    const p = await runCli(['shaping', 'explain', 'plain.test', '-c', config()]);
    assert.match(p.stdout, /provider: +none/);
    assert.match(p.stdout, /rules \(first match wins\): none/);
  });

  test('`config check` refuses a provider of the operator\'s own without mx', async () => {
    const r = await runCli(['config', 'check', config('[shaping.providers.acme]\nrate = "10/min"\n')]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /shaping\.providers\.acme\.mx.*needs mx/);
  });
});

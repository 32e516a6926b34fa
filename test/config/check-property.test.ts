/**
 * test/config/check-property — the promise of `config check`, as a property:
 * for generated configurations (valid and invalid values mixed: ports out of
 * range, bad CIDRs, unknown enums, odd names, sizes and rates), whatever
 * `check` accepts starts and serves a message — greeting, EHLO, MAIL, RCPT to
 * a routed and a local domain, DATA, one delivery pass — without throwing.
 * Whatever it refuses, it refuses with a key path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { configProblems, startApp } from '../../src/app.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { createResolver } from '../../src/delivery/resolve.js';
import { freePort } from '../support/halcyon.js';
import { RawSmtpClient } from '../support/smtp-client.js';

/** Mostly good values, sometimes a bad one: both sides of `check` get exercised. */
function mostly<T>(good: readonly T[], bad: readonly T[]): fc.Arbitrary<T> {
  return fc.oneof({ arbitrary: fc.constantFrom(...good), weight: 12 }, { arbitrary: fc.constantFrom(...bad), weight: 1 });
}
const hostPort = fc.tuple(fc.constantFrom('127.0.0.1', '[::1]', '127.0.0.2'), mostly([1, 25, 2, 65535], [0, 65536, 99999])).map(([h, p]) => `${h}:${p}`);
const optional = { requiredKeys: [] as never[] };

const rawConfig = fc.record({
  hostname: mostly(['mx.halcyon.test', '[127.0.0.1]', 'x'], ['mx test', '']),
  postmaster: mostly(['postmaster@localhost', 'pm@example.test'], ['nobody']),
  smtp: fc.record({
    max_recipients: mostly([1, 2, 3, 1000], [0, -1, 'many']),
    max_message_size: mostly(['1k', '35MiB', '0', 1024], ['-1', 'lots', 512.5]),
    bare_newline: mostly(['normalize', 'reject'], ['fix']),
    max_errors: mostly([1, 3], [0]),
    command_timeout: mostly(['5m', '10s', '0s'], ['soon']),
  }, optional),
  relay: fc.record({
    networks: fc.array(mostly(['127.0.0.0/8', '::1/128', '0.0.0.0/0', '::/0', '127.0.0.1', '192.0.2.0/24'], ['10.0.0.0/33', 'not-a-cidr', '::1/129']), { maxLength: 3 }),
  }, optional),
  routes: fc.dictionary(fc.constantFrom('a.test', '*', 'B.TEST.'), fc.oneof(
    hostPort,
    fc.array(hostPort, { minLength: 1, maxLength: 2 }),
    fc.record({ hosts: fc.array(hostPort, { minLength: 1, maxLength: 2 }), tls: mostly(['none', 'opportunistic', 'required', 'verify'], ['must']) }, { requiredKeys: ['hosts'] }),
  ), { maxKeys: 2 }),
  delivery: fc.record({
    port: mostly([1, 25, 2, 65535], [0, -1, 70_000]),
    tls: mostly(['none', 'opportunistic', 'required', 'verify'], ['must']),
    max_connections: mostly([1, 3], [0]),
    max_recipients_per_transaction: mostly([1, 3], [0]),
    destination_rate: mostly(['1/min', '100/s'], ['0/min', 'fast']),
    mailbox_full: mostly(['permanent', 'transient'], ['maybe']),
    helo_name: mostly(['client.test'], ['two words']),
  }, optional),
  domains: fc.array(fc.record({
    name: mostly(['example.test', 'loc.test', 'a.test'], ['../up', '.']),
    mailboxes: fc.array(fc.record({ user: mostly(['bob', 'postmaster'], ['..', 'a/b']), quota: mostly(['0', '1k', '1MiB'], ['bad']) }), { maxLength: 2 }),
    over_quota_reply: mostly(['552', '452'], ['550']),
  }, { requiredKeys: ['name'] }), { maxLength: 2 }),
  dns: fc.record({ servers: fc.array(mostly(['127.0.0.1', '127.0.0.1:5353', '[::1]:53'], ['127.0.0.1:99999', 'dns.example']), { maxLength: 2 }) }, optional),
}, optional);

/** Accepted by `config check` (schema and start-up rules), or the problems it names. */
function check(raw: unknown): ReturnType<typeof parseConfig> | ConfigError {
  try {
    const cfg = parseConfig(raw);
    const problems = configProblems(cfg);
    return problems.length > 0 ? new ConfigError(undefined, problems) : cfg;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err; // anything but a ConfigError from check is itself a failure
  }
}

/** A session as a client would hold it; a 421 (too many errors) ends it, as the server may. Every reply is a real one. */
async function converse(c: RawSmtpClient, local: string): Promise<void> {
  const ended = (code: number) => code === 421;
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  assert.equal((await c.cmd('MAIL FROM:<s@sender.test>')).code, 250);
  let ok = 0;
  for (const rcpt of ['x@a.test', 'y@b.test', local]) {
    const r = await c.cmd(`RCPT TO:<${rcpt}>`);
    assert.ok(r.code >= 250 && r.code < 600, `RCPT ${rcpt}: ${r.code}`);
    if (ended(r.code)) return;
    if (r.code === 250) ok++;
  }
  if (ok > 0) {
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: property\r\n\r\nhello\r\n.\r\n');
    const end = await c.read();
    assert.ok([250, 552, 554].includes(end.code), `end of data: ${end.code} ${end.lines.join(' ')}`);
  }
  assert.equal((await c.cmd('QUIT')).code, 221);
}

test('any configuration `config check` accepts starts and serves a message without throwing', async () => {
  const deadDns = await freePort();
  let accepted = 0;
  await fc.assert(fc.asyncProperty(rawConfig, async (raw) => {
    const checked = check(raw);
    if (checked instanceof ConfigError) {
      for (const p of checked.problems) assert.ok(p.path.length > 0 && p.message.length > 0, JSON.stringify(p));
      return;
    }
    accepted++;
    // The resolver is built from dns.servers as given (a bad one would throw here); lookups then go to a dead port.
    createResolver({ servers: checked.dns.servers, timeoutMs: 500 });
    const dataDir = mkdtempSync(join(tmpdir(), 'halcyon-prop-'));
    const cfg = { ...checked, data_dir: dataDir, smtp: { ...checked.smtp, listen: ['127.0.0.1:0'] }, http: { ...checked.http, listen: '127.0.0.1:0' },
      dns: { ...checked.dns, servers: [`127.0.0.1:${deadDns}`], timeout: '300ms' }, delivery: { ...checked.delivery, timeouts: { ...checked.delivery.timeouts, connect: '500ms' } } };
    const app = await startApp(cfg, { logger: pino({ level: 'silent' }), manualScheduler: true });
    try {
      const port = Number(app.listening[0]!.address.split(':').pop());
      const c = await RawSmtpClient.connect(port);
      await converse(c, cfg.domains[0] ? `${cfg.domains[0].mailboxes[0]?.user ?? 'postmaster'}@${cfg.domains[0].name}` : 'postmaster');
      c.close();
      if ((await app.store.recipients.counts()).messages > 0) {
        await app.qmgr.runOnce();
        // Let the pass's deliveries (dead ports, a dead resolver, local mailboxes) finish.
        for (let i = 0; i < 60 && (await app.store.recipients.counts()).byState.inflight > 0; i++) await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await app.stop(2_000);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }), { numRuns: 40 });
  assert.ok(accepted >= 3, `only ${accepted} generated configurations were valid: the generator tests little`);
});

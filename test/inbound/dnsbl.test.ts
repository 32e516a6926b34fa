/**
 * DNS blocklists on the MX listener, against a real DNS server on loopback
 * (test/support/dns-server.ts) and real SMTP clients from two loopback
 * addresses (127.0.0.1 is listed, 127.0.0.2 is not).
 *
 * Checks what a postmaster would: a listed client is greeted, then gets
 * `554 5.7.1 Service unavailable; client [IP] blocked using LIST` at RCPT
 * (its sender and recipient logged); an unlisted one is accepted; a list
 * that times out lets the client through and the failure is logged; clients
 * in [relay] networks are never looked up; a second connection within the
 * TTL asks the DNS nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const ZONE = 'zen.example.test';

async function attempt(port: number, localAddress: string): Promise<{ greeting: number; mail: number; rcpt: string }> {
  const c = await RawSmtpClient.connect(port, { localAddress });
  try {
    const greeting = (await c.read()).code;
    await c.expect('EHLO client.test', 250);
    const mail = (await c.cmd('MAIL FROM:<sender@client.test>')).code;
    const r = await c.cmd('RCPT TO:<postmaster@localhost>');
    await c.cmd('QUIT').catch(() => undefined);
    return { greeting, mail, rcpt: [r.code, r.enhanced, ...r.lines].filter((x) => x !== undefined).join(' ') };
  } finally {
    c.close();
  }
}

describe('DNSBL on the MX listener (real loopback DNS)', { timeout: 60_000 }, () => {
  let dns: TestDnsServer;
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { logs.push(s); } });
  let h: TestApp;
  before(async () => {
    dns = await startDnsServer({
      [`1.0.0.127.${ZONE}`]: { A: ['127.0.0.2'] },
      [`1.0.0.127.slow.example.test`]: 'TIMEOUT',
      [`2.0.0.127.slow.example.test`]: 'TIMEOUT',
    });
    h = await startTestApp({
      relay: { networks: [] },
      dns: { servers: [dns.address], timeout: '500ms' },
      inbound: { dnsbl: [ZONE] },
    }, { logger });
  });
  after(async () => { await h?.stop(); await dns?.close(); });

  test('listed (127.0.0.1): greeted, then 554 5.7.1 at RCPT naming the client and the list; sender and recipient logged', async () => {
    const r = await attempt(h.port, '127.0.0.1');
    assert.equal(r.greeting, 220);
    assert.equal(r.mail, 250);
    assert.equal(r.rcpt, `554 5.7.1 Service unavailable; client [127.0.0.1] blocked using ${ZONE}`);
    const line = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reason === 'dnsbl');
    assert.ok(line, logs.join(''));
    assert.equal(line.from, 'sender@client.test');
    assert.equal(line.to, 'postmaster@localhost');
    assert.equal(line.helo, 'client.test');
    assert.match(String(line.msg), /^NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 /);
    assert.equal(line.dnsbl, ZONE);
    assert.equal((await h.app.store.recipients.counts()).messages, 0);
  });

  test('not listed (127.0.0.2, NXDOMAIN): accepted', async () => {
    const r = await attempt(h.port, '127.0.0.2');
    assert.match(r.rcpt, /^250 /);
  });

  test('checked once per connection and cached by TTL: a second connection from a listed client asks the DNS nothing', async () => {
    const before = dns.queries.filter((q) => q.name.toLowerCase() === `1.0.0.127.${ZONE}`).length;
    assert.ok(before >= 1);
    const r = await attempt(h.port, '127.0.0.1');
    assert.match(r.rcpt, /^554 5\.7\.1 /);
    assert.equal(dns.queries.filter((q) => q.name.toLowerCase() === `1.0.0.127.${ZONE}`).length, before);
  });

  test('a list that times out: the client is accepted and the failure logged', async () => {
    const lines: string[] = [];
    const t = await startTestApp({
      relay: { networks: [] },
      dns: { servers: [dns.address], timeout: '300ms' },
      inbound: { dnsbl: ['slow.example.test'] },
    }, { logger: pino({ level: 'info' }, { write: (s: string) => { lines.push(s); } }) });
    try {
      const r = await attempt(t.port, '127.0.0.1');
      assert.match(r.rcpt, /^250 /);
      assert.ok(lines.some((l) => /DNSBL lookup failed/.test(l) && /slow\.example\.test/.test(l)), lines.join(''));
    } finally {
      await t.stop();
    }
  });

  test('[relay] networks are never checked: a listed relay client is accepted and no query is made', async () => {
    const t = await startTestApp({
      relay: { networks: ['127.0.0.1/32'] },
      dns: { servers: [dns.address], timeout: '500ms' },
      inbound: { dnsbl: [{ zone: 'relay-only.example.test', codes: ['127.0.0.2'] }] },
    });
    try {
      const r = await attempt(t.port, '127.0.0.1');
      assert.match(r.rcpt, /^250 /);
      assert.equal(dns.queries.filter((q) => q.name.toLowerCase().endsWith('relay-only.example.test')).length, 0);
    } finally {
      await t.stop();
    }
  });
});

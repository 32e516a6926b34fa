/**
 * Per-client rate limits (inbound/anvil) as clients see them, over real
 * loopback sockets from two addresses (127.0.0.1 and 127.0.0.2):
 * connections per minute per IP → 421 4.7.0 at connect, while another
 * address is unaffected; messages per minute per IP → 450 4.7.1 at MAIL
 * FROM; recipients per minute per AUTH user → 450 4.7.1 at RCPT; [relay]
 * networks are exempt; each refusal is counted in /metrics.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword } from '../../src/inbound/auth.js';
import { startTestApp } from '../support/halcyon.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const line = (r: { code: number; enhanced?: string; lines: readonly string[] }): string => [r.code, r.enhanced, ...r.lines].filter((x) => x !== undefined).join(' ');

async function greeting(port: number, localAddress: string): Promise<string> {
  const c = await RawSmtpClient.connect(port, { localAddress });
  try {
    return line(await c.read());
  } finally {
    c.close();
  }
}

describe('per-client rate limits', { timeout: 60_000 }, () => {
  test('a client over its connection rate gets 421 4.7.0; a client from another address is unaffected; counted in /metrics', async (t) => {
    const h = await startTestApp({ relay: { networks: [] }, inbound: { connection_rate_limit: 3 } });
    t.after(() => h.stop());
    for (let i = 0; i < 3; i++) assert.match(await greeting(h.port, '127.0.0.1'), /^220 /);
    assert.equal(await greeting(h.port, '127.0.0.1'), '421 4.7.0 Error: too many connections from your address, try again later');
    assert.match(await greeting(h.port, '127.0.0.2'), /^220 /, 'another address is unaffected');
    assert.match(await h.app.metrics.text(), /halcyon_messages_rejected_total\{reason="rate_connections",node="[^"]+"\} 1/);
  });

  test('messages per minute per IP: the third MAIL FROM gets 450 4.7.1, on any connection; another address is unaffected', async (t) => {
    const h = await startTestApp({ relay: { networks: [] }, inbound: { message_rate_limit: 2 } });
    t.after(() => h.stop());
    const c = await RawSmtpClient.connect(h.port, { localAddress: '127.0.0.1' });
    t.after(() => c.close());
    await c.read();
    await c.expect('EHLO client.test', 250);
    await c.expect('MAIL FROM:<a@client.test>', 250);
    await c.expect('RSET', 250);
    await c.expect('MAIL FROM:<a@client.test>', 250);
    await c.expect('RSET', 250);
    assert.equal(line(await c.cmd('MAIL FROM:<a@client.test>')), '450 4.7.1 Error: too many messages from your address, try again later');
    const other = await RawSmtpClient.connect(h.port, { localAddress: '127.0.0.2' });
    t.after(() => other.close());
    await other.read();
    await other.expect('EHLO other.test', 250);
    await other.expect('MAIL FROM:<b@other.test>', 250);
    assert.match(await h.app.metrics.text(), /halcyon_messages_rejected_total\{reason="rate_messages",node="[^"]+"\} 1/);
  });

  test('recipients per minute per AUTH user: past the limit RCPT gets 450 4.7.1; the accepted ones are kept', async (t) => {
    const h = await startTestApp({
      relay: { networks: [] },
      users: [{ name: 'u', password_hash: hashPassword('p') }],
      routes: { 'remote.test': '127.0.0.1:9' },
      inbound: { recipient_rate_limit: 2 },
    });
    t.after(() => h.stop());
    const c = await RawSmtpClient.connect(h.port, { localAddress: '127.0.0.1' });
    t.after(() => c.close());
    await c.read();
    await c.expect('EHLO client.test', 250);
    await c.expect(`AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`, 235);
    await c.expect('MAIL FROM:<u@client.test>', 250);
    await c.expect('RCPT TO:<r1@remote.test>', 250);
    await c.expect('RCPT TO:<r2@remote.test>', 250);
    assert.equal(line(await c.cmd('RCPT TO:<r3@remote.test>')), '450 4.7.1 Error: too many recipients from your account, try again later');
    assert.match(await h.app.metrics.text(), /halcyon_messages_rejected_total\{reason="rate_recipients",node="[^"]+"\} 1/);
  });

  test('[relay] networks are exempt: a relay client far past every limit is still served', async (t) => {
    const h = await startTestApp({ relay: { networks: ['127.0.0.1/32'] }, inbound: { connection_rate_limit: 1, message_rate_limit: 1 } });
    t.after(() => h.stop());
    for (let i = 0; i < 4; i++) assert.match(await greeting(h.port, '127.0.0.1'), /^220 /);
    const c = await RawSmtpClient.connect(h.port, { localAddress: '127.0.0.1' });
    t.after(() => c.close());
    await c.read();
    await c.expect('EHLO client.test', 250);
    for (let i = 0; i < 3; i++) {
      await c.expect('MAIL FROM:<a@client.test>', 250);
      await c.expect('RSET', 250);
    }
  });
});

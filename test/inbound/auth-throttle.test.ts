/**
 * Password guessing (issue 10, item 6): AUTH failures from one address are
 * counted across its connections; past auth_max_failures within
 * auth_lockout, AUTH from it is refused with 454 4.7.0 without the password
 * being looked at, while other addresses authenticate as usual; the lockout
 * ends when the failures age out. And EHLO never echoes control bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { hashPassword } from '../../src/inbound/auth.js';
import { AuthThrottle } from '../../src/inbound/auth-throttle.js';
import { startTestApp } from '../support/halcyon.js';
import { RawSmtpClient } from '../support/smtp-client.js';

const plain = (u: string, p: string) => Buffer.from(`\0${u}\0${p}`).toString('base64');
const codeOf = (r: { code: number; enhanced?: string }) => `${r.code} ${r.enhanced ?? ''}`.trim();

async function tryAuth(port: number, from: string, password: string): Promise<string> {
  const c = await RawSmtpClient.connect(port, { localAddress: from });
  try {
    await c.read();
    await c.cmd('EHLO client.test');
    return codeOf(await c.cmd(`AUTH PLAIN ${plain('u', password)}`, 10_000));
  } finally {
    c.close();
  }
}

test('AuthThrottle: the delay per failure, the lockout after N in the window, and its end', () => {
  let now = 0;
  const t = new AuthThrottle({ failureDelayMs: 1000, maxFailures: 3, lockoutMs: 60_000 }, () => now);
  assert.equal(t.failed('192.0.2.1'), 1000);
  now = 10_000;
  t.failed('192.0.2.1');
  assert.equal(t.lockedUntil('192.0.2.1'), undefined);
  now = 20_000;
  t.failed('192.0.2.1');
  assert.equal(t.lockedUntil('192.0.2.1'), 60_000, 'locked until the first of the three is a window old');
  assert.equal(t.lockedUntil('192.0.2.2'), undefined, 'per address');
  now = 60_000;
  assert.equal(t.lockedUntil('192.0.2.1'), undefined);
});

test('after auth_max_failures wrong passwords on fresh connections, even the right one gets 454 4.7.0 — from that address only', async () => {
  const t = await startTestApp({
    users: [{ name: 'u', password_hash: hashPassword('p') }],
    smtp: { auth_failure_delay: '50ms', auth_max_failures: 3, auth_lockout: '3s' },
  });
  try {
    for (let i = 0; i < 3; i++) assert.equal(await tryAuth(t.port, '127.0.0.2', 'wrong'), '535 5.7.8');
    assert.equal(await tryAuth(t.port, '127.0.0.2', 'p'), '454 4.7.0', 'locked out: the password is not even checked');
    assert.equal(await tryAuth(t.port, '127.0.0.3', 'p'), '235 2.7.0', 'another address is not affected');
    // The failures age out of the window: the address may try again.
    let code = '';
    for (let i = 0; i < 100 && code !== '235 2.7.0'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      code = await tryAuth(t.port, '127.0.0.2', 'p');
    }
    assert.equal(code, '235 2.7.0');
  } finally {
    await t.stop();
  }
});

test('an EHLO argument holding NUL and ESC is never echoed verbatim', async () => {
  const t = await startTestApp();
  try {
    const sock = net.connect({ port: t.port, host: '127.0.0.1' });
    let got = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); });
    await new Promise((r) => sock.once('connect', r));
    sock.write(Buffer.from('EHLO ev\x00il\x1b[31m.test\r\n', 'latin1'));
    for (let i = 0; i < 100 && !/\r\n250 /.test(got.toString('latin1')); i++) await new Promise((r) => setTimeout(r, 20));
    const text = got.toString('latin1');
    assert.match(text, /^250-/m, `EHLO answered: ${JSON.stringify(text)}`);
    assert.ok(!text.includes('\x00') && !text.includes('\x1b'), `no NUL or ESC in the reply: ${JSON.stringify(text)}`);
    sock.destroy();
  } finally {
    await t.stop();
  }
});

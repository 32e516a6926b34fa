/**
 * Connection admission under attack (issue 10, item 3): a client holding many
 * connections from several loopback addresses (127.0.0.2 … are loopback on
 * Linux) and never closing its refused ones. Each refused connection gets
 * `421 4.7.0` and is closed by the server on a timer; per-IP limits apply
 * before the server-wide one; a client from another address still gets its
 * greeting, never a silent EOF. Real sockets, the in-process app.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestApp } from '../support/halcyon.js';

interface Held {
  readonly sock: net.Socket;
  text: string;
  /** The server ended its side (FIN). */
  ended: boolean;
  /** The socket is gone (the server destroyed it: our writes got a reset). */
  closed: boolean;
}

/** A hostile client: half-open allowed, so it never closes its side, even after the server's FIN. */
function hold(port: number, localAddress: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true });
    const h: Held = { sock, text: '', ended: false, closed: false };
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { h.text += d; });
    sock.on('end', () => { h.ended = true; });
    sock.on('close', () => { h.closed = true; });
    sock.on('error', () => { /* a reset is how a destroyed socket shows */ });
    sock.once('connect', () => resolve(h));
    sock.once('error', reject);
  });
}

async function until(what: string, pred: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('an address holding refused connections shuts no one out; refused sockets are closed by the server', async () => {
  const t = await startTestApp({ smtp: { max_connections: 40, max_connections_per_ip: 5 } });
  const held: Held[] = [];
  try {
    // 4 addresses × 60 connections: 20 admitted, 220 refused and held open by the client.
    for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      for (let i = 0; i < 60; i++) held.push(await hold(t.port, ip));
    }
    await until('every held connection to get its first line', () => held.every((h) => h.text.includes('\r\n')));
    const admitted = held.filter((h) => h.text.startsWith('220 '));
    const refused = held.filter((h) => !h.text.startsWith('220 '));
    assert.equal(admitted.length, 20, 'per-IP limit: 5 from each address');
    for (const h of refused) assert.match(h.text, /^421 4\.7\.0 Too many connections from your address/);

    // Another client, from another address, is greeted — not dropped silently.
    const legit = await hold(t.port, '127.0.0.9');
    await until('a greeting or an end for the other client', () => legit.text.includes('\r\n') || legit.ended || legit.closed);
    assert.match(legit.text, /^220 /, `the other client got "${legit.text}" (ended=${legit.ended})`);
    legit.sock.destroy();

    // The hostile client never closes; the server does. A write to a destroyed socket is reset.
    await until('the server to close every refused socket', () => {
      for (const h of refused) if (!h.closed) h.sock.write('NOOP\r\n');
      return refused.every((h) => h.closed);
    });
    assert.ok(admitted.every((h) => !h.closed), 'admitted sessions are left alone');
  } finally {
    for (const h of held) h.sock.destroy();
    await t.stop();
  }
});

test('the per-IP limit is checked before the server-wide one', async () => {
  const t = await startTestApp({ smtp: { max_connections: 6, max_connections_per_ip: 4 } });
  const held: Held[] = [];
  const first = async (ip: string) => {
    const h = await hold(t.port, ip);
    held.push(h);
    await until(`a first line for ${ip}`, () => h.text.includes('\r\n'));
    return h.text;
  };
  try {
    for (let i = 0; i < 4; i++) assert.match(await first('127.0.0.2'), /^220 /);
    for (let i = 0; i < 2; i++) assert.match(await first('127.0.0.3'), /^220 /);
    // The server is full AND 127.0.0.2 is at its own limit: the answer names the address.
    assert.match(await first('127.0.0.2'), /^421 4\.7\.0 Too many connections from your address/);
    assert.match(await first('127.0.0.4'), /^421 4\.7\.0 Too many connections, try again later/);
  } finally {
    for (const h of held) h.sock.destroy();
    await t.stop();
  }
});

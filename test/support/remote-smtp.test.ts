/**
 * Proves the scriptable remote (test/support/remote-smtp) behaves like a real
 * server before other tests trust it: pipelined replies in order, the
 * recipient limit, per-recipient replies, recording, dot-unstuffing, BDAT,
 * STARTTLS + AUTH, and the refuse/421/drop modes. Driven by a raw socket.
 */
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { ReplyParser, type Reply } from '../../src/smtp/reply.js';
import { startRemote, type Remote } from './remote-smtp.js';

interface Client {
  write(s: string | Buffer): void;
  /** The next reply; rejects after timeoutMs or when the connection closes first. */
  reply(timeoutMs?: number): Promise<Reply>;
  replies(n: number): Promise<Reply[]>;
  startTls(): Promise<void>;
  closed: Promise<void>;
  end(): void;
}

function client(port: number): Client {
  let sock: net.Socket = net.connect(port, '127.0.0.1');
  const parser = new ReplyParser();
  const got: Reply[] = [];
  let wake: (() => void) | undefined;
  let isClosed = false;
  const onData = (c: Buffer): void => { got.push(...parser.push(c)); wake?.(); };
  sock.on('data', onData);
  sock.on('error', () => {});
  const closed = new Promise<void>((resolve) => sock.on('close', () => { isClosed = true; wake?.(); resolve(); }));
  const reply = async (timeoutMs = 5000): Promise<Reply> => {
    const deadline = Date.now() + timeoutMs;
    while (got.length === 0) {
      if (isClosed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('no reply');
      await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 100); });
    }
    return got.shift()!;
  };
  return {
    write: (s) => sock.write(s),
    reply: (t) => reply(t),
    async replies(n) {
      const out: Reply[] = [];
      for (let i = 0; i < n; i++) out.push(await reply());
      return out;
    },
    async startTls() {
      sock.removeListener('data', onData);
      const secure = tls.connect({ socket: sock, rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => { secure.once('secureConnect', resolve); secure.once('error', reject); });
      secure.on('data', onData);
      sock = secure;
    },
    closed,
    end: () => sock.end(),
  };
}

const codes = (rs: Reply[]): number[] => rs.map((r) => r.code);
let remote: Remote | undefined;
afterEach(async () => { await remote?.close(); remote = undefined; });

describe('remote-smtp', () => {
  test('pipelined MAIL + RCPTs + DATA get their replies in order; limit K=2 answers the rest with the limit reply', async () => {
    remote = await startRemote({ rcptLimit: { max: 2, reply: '452 4.5.3 Too many recipients' } });
    const c = client(remote.port);
    assert.equal((await c.reply()).code, 220);
    c.write('EHLO client.test\r\n');
    const ehlo = await c.reply();
    assert.ok(ehlo.lines.includes('PIPELINING'));
    c.write('MAIL FROM:<s@client.test> BODY=8BITMIME\r\nRCPT TO:<a@r.test>\r\nRCPT TO:<b@r.test>\r\nRCPT TO:<c@r.test>\r\nRCPT TO:<d@r.test>\r\nDATA\r\n');
    const rs = await c.replies(6);
    assert.deepEqual(codes(rs), [250, 250, 250, 452, 452, 354]);
    assert.equal(rs[3]!.enhanced, '4.5.3');
    c.write('Subject: x\r\n\r\n..leading dot\r\n.\r\n');
    assert.equal((await c.reply()).code, 250);
    c.write('QUIT\r\n');
    assert.equal((await c.reply()).code, 221);
    await c.closed;
    assert.equal(remote.transactions.length, 1);
    const tx = remote.transactions[0]!;
    assert.equal(tx.mailFrom, 's@client.test');
    assert.deepEqual(tx.mailParams, ['BODY=8BITMIME']);
    assert.deepEqual(tx.rcpts, ['a@r.test', 'b@r.test']);
    assert.deepEqual(tx.rcptReplies.map((r) => r.reply.slice(0, 3)), ['250', '250', '452', '452']);
    assert.equal(tx.data.toString(), 'Subject: x\r\n\r\n.leading dot\r\n');
    assert.deepEqual(remote.commands.map((x) => x.line.split(/[ :]/)[0]), ['EHLO', 'MAIL', 'RCPT', 'RCPT', 'RCPT', 'RCPT', 'DATA', 'QUIT']);
  });

  test('per-recipient replies and a second transaction on the same connection (limit counted per transaction)', async () => {
    remote = await startRemote({
      rcpt: (rcpt, ctx) => (rcpt.startsWith('full') ? '552 5.2.2 Mailbox full' : ctx.accepted >= 3 ? '552 Too many recipients' : undefined),
    });
    const c = client(remote.port);
    await c.reply();
    c.write('EHLO c\r\n');
    await c.reply();
    c.write('MAIL FROM:<>\r\nRCPT TO:<full@r.test>\r\nRCPT TO:<x@r.test>\r\nDATA\r\n');
    assert.deepEqual(codes(await c.replies(4)), [250, 552, 250, 354]);
    c.write('one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<y@r.test>\r\nRSET\r\n');
    assert.deepEqual(codes(await c.replies(4)), [250, 250, 250, 250]);
    assert.deepEqual(remote.transactions.map((t) => [t.mailFrom, t.rcpts]), [['', ['x@r.test']]]);
    assert.equal(remote.connections.length, 1);
    c.end();
  });

  test('BDAT chunks are concatenated verbatim (no unstuffing); the LAST chunk gets the end-of-data reply', async () => {
    remote = await startRemote({ extensions: { chunking: true, pipelining: true }, endOfDataReply: '250 2.0.0 got it' });
    const c = client(remote.port);
    await c.reply();
    c.write('EHLO c\r\n');
    assert.ok((await c.reply()).lines.includes('CHUNKING'));
    c.write('MAIL FROM:<s@c>\r\nRCPT TO:<r@r>\r\nBDAT 5\r\n..abcBDAT 3 LAST\r\nxyz');
    const rs = await c.replies(4);
    assert.deepEqual(codes(rs), [250, 250, 250, 250]);
    assert.equal(rs[3]!.lines[0], 'got it');
    assert.equal(remote.transactions[0]!.data.toString(), '..abcxyz');
    c.end();
  });

  test('dropConnectionAfterData records the transaction and closes without a reply', async () => {
    remote = await startRemote({ dropConnectionAfterData: true });
    const c = client(remote.port);
    await c.reply();
    c.write('HELO c\r\nMAIL FROM:<s@c>\r\nRCPT TO:<r@r>\r\nDATA\r\n');
    assert.deepEqual(codes(await c.replies(4)), [250, 250, 250, 354]);
    c.write('body\r\n.\r\n');
    await c.closed;
    await assert.rejects(c.reply(), /closed/);
    assert.equal(remote.transactions.length, 1);
    assert.equal(remote.transactions[0]!.reply, undefined);
  });

  test('banner 421 closes; refuse closes at once; 554 banner answers 503 until QUIT; concurrency is counted', async () => {
    remote = await startRemote({ banner: '421 4.3.2 busy' });
    const a = client(remote.port);
    assert.equal((await a.reply()).code, 421);
    await a.closed;
    remote.setOptions({ banner: '554 5.3.2 no service' });
    const b = client(remote.port);
    assert.equal((await b.reply()).code, 554);
    b.write('EHLO c\r\nQUIT\r\n');
    assert.deepEqual(codes(await b.replies(2)), [503, 221]);
    await b.closed;
    remote.setOptions({ banner: undefined, refuse: true });
    const d = client(remote.port);
    await d.closed;
    await assert.rejects(d.reply(), /closed/);
    remote.setOptions({ refuse: false });
    const e = client(remote.port);
    const f = client(remote.port);
    await e.reply();
    await f.reply();
    assert.equal(remote.current, 2);
    assert.equal(remote.maxConcurrent, 2);
    assert.equal(remote.connections.length, 5);
    e.end();
    f.end();
    await remote.waitFor(() => remote!.current === 0);
  });

  test('slow replies (delayMs) still come one per pipelined command, in order', async () => {
    remote = await startRemote({ delayMs: 20, mailReply: '250 2.1.0 sender ok', rcpt: (r) => (r.startsWith('x') ? '550 5.1.1 unknown' : undefined) });
    const c = client(remote.port);
    await c.reply();
    c.write('EHLO c\r\nMAIL FROM:<s@c>\r\nRCPT TO:<x@r>\r\nRCPT TO:<y@r>\r\nNOOP\r\n');
    const rs = await c.replies(5);
    assert.deepEqual(codes(rs), [250, 250, 550, 250, 250]);
    assert.equal(rs[1]!.lines[0], 'sender ok');
    c.end();
  });

  test('hang mode accepts and never greets', async () => {
    remote = await startRemote({ hang: true });
    const c = client(remote.port);
    await remote.waitFor(() => remote!.connections.length === 1);
    await assert.rejects(c.reply(300), /no reply/);
    c.end();
  });

  test('STARTTLS upgrades, EHLO is needed again, AUTH PLAIN and LOGIN check the credentials', async () => {
    const pems = await generate([{ name: 'commonName', value: 'remote.test' }], { keyType: 'ec', curve: 'P-256' });
    remote = await startRemote({
      extensions: { pipelining: true, starttls: { key: pems.private, cert: pems.cert }, auth: { user: 'u', password: 'p' } },
    });
    const c = client(remote.port);
    await c.reply();
    c.write('EHLO c\r\n');
    assert.ok((await c.reply()).lines.includes('STARTTLS'));
    c.write('STARTTLS\r\n');
    assert.equal((await c.reply()).code, 220);
    await c.startTls();
    c.write('MAIL FROM:<s@c>\r\n');
    assert.equal((await c.reply()).code, 503);
    c.write('EHLO c\r\n');
    assert.ok(!(await c.reply()).lines.includes('STARTTLS'));
    c.write(`AUTH PLAIN ${Buffer.from('\0u\0wrong').toString('base64')}\r\n`);
    assert.equal((await c.reply()).code, 535);
    c.write(`AUTH LOGIN\r\n${Buffer.from('u').toString('base64')}\r\n${Buffer.from('p').toString('base64')}\r\n`);
    assert.deepEqual(codes(await c.replies(3)), [334, 334, 235]);
    assert.equal(remote.connections[0]!.tls, true);
    assert.equal(remote.connections[0]!.authUser, 'u');
    c.end();
  });
});

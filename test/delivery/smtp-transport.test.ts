/**
 * Integration tests for delivery/smtp-transport (with connection.ts and
 * send.ts) over real sockets against the scriptable remote
 * (test/support/remote-smtp). Each scenario asserts on what the remote saw
 * (connections, command lines, transactions) and on what `record` received,
 * and every scenario checks I1: an address that got a 250 never appears in a
 * later RCPT TO.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { generate } from 'selfsigned';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createResolver } from '../../src/delivery/resolve.js';
import { destinationKey } from '../../src/delivery/route.js';
import { SmtpTransport, type BatchResult, type RecipientVerdict } from '../../src/delivery/smtp-transport.js';
import { createLogger } from '../../src/log.js';
import type { MessageRow, RecipientRow } from '../../src/queue/model.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';

const BODY = Buffer.from('From: a@origin.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello.\r\n.leading dot\r\n');
const dir = mkdtempSync(join(tmpdir(), 'halcyon-smtp-transport-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const message = (over: Partial<MessageRow> = {}): MessageRow => ({
  id: 'M1',
  sender: 'sender@origin.test',
  params: { smtputf8: false },
  receivedAt: 0,
  size: BODY.length,
  trace: { clientIp: '127.0.0.1', clientHelo: 'client.test', protocol: 'ESMTP' },
  held: false,
  ...over,
});

const recipients = (n: number, over: Partial<RecipientRow> = {}): RecipientRow[] =>
  Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    messageId: 'M1',
    address: `u${i + 1}@example.test`,
    destination: 'example.test',
    state: 'inflight' as const,
    attempts: 0,
    nextAttemptAt: 0,
    delayNotified: false,
    dsnDone: false,
    updatedAt: 0,
    ...over,
  }));

interface Harness {
  transport: SmtpTransport;
  logLines: string[];
  /** Every call of `record`, in order. */
  calls: Map<number, RecipientVerdict>[];
  run(opts?: { rcpts?: RecipientRow[]; msg?: MessageRow; body?: Buffer }): Promise<{ result: BatchResult; verdicts: Map<number, RecipientVerdict> }>;
}

const open: { transport: SmtpTransport; remotes: Remote[] }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.transport.close();
    await Promise.all(o.remotes.map((r) => r.close()));
  }
});

type RouteInput = NonNullable<ConfigInput['routes']>[string];

function harness(route: RouteInput, delivery: NonNullable<ConfigInput['delivery']> = {}, remotes: Remote[] = []): Harness {
  const config = parseConfig({
    hostname: 'halcyon.test',
    data_dir: dir,
    routes: { 'example.test': route },
    delivery: { timeouts: { connect: '5s', greeting: '5s', command: '5s', data_init: '5s', data_block: '5s', data_done: '5s' }, ...delivery },
  });
  const logLines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { logLines.push(chunk.toString()); cb(); } });
  const log = createLogger({ level: 'debug', format: 'json', destination: sink });
  const transport = new SmtpTransport({ config: () => config, resolver: createResolver({ servers: [], timeoutMs: 2000 }), log });
  open.push({ transport, remotes });
  const calls: Map<number, RecipientVerdict>[] = [];
  return {
    transport,
    logLines,
    calls,
    async run({ rcpts = recipients(10), msg = message(), body = BODY } = {}) {
      const verdicts = new Map<number, RecipientVerdict>();
      const result = await transport.deliver(
        { destination: destinationKey('example.test', config.routes), domain: 'example.test', message: msg, body, recipients: rcpts },
        async (v) => {
          calls.push(new Map(v));
          for (const [id, verdict] of v) {
            assert.ok(!verdicts.has(id), `recipient ${id} recorded twice`);
            verdicts.set(id, verdict);
          }
        },
      );
      assert.equal(verdicts.size, rcpts.length, 'every recipient is recorded');
      return { result, verdicts };
    },
  };
}

const rcptAddr = (line: string): string | undefined => /^RCPT TO:<([^>]*)>/i.exec(line)?.[1];

/**
 * I1: an address that got 250 never appears in a later RCPT TO. When every
 * RCPT belongs to a completed transaction (the remote records those with
 * their replies, in order) the check walks them in order; otherwise it asks
 * for more: no address in two RCPT commands at all.
 */
function assertNeverTwice(remote: Remote): void {
  const rcptCommands = remote.commands.map((c) => rcptAddr(c.line)).filter((a): a is string => a !== undefined);
  const inTransactions = remote.transactions.reduce((n, t) => n + t.rcptReplies.length, 0);
  if (inTransactions !== rcptCommands.length) {
    assert.equal(new Set(rcptCommands).size, rcptCommands.length, 'an address was sent twice');
    return;
  }
  const accepted = new Set<string>();
  for (const t of remote.transactions) {
    for (const { rcpt, reply } of t.rcptReplies) {
      assert.ok(!accepted.has(rcpt), `${rcpt} got 250 and was sent again`);
      if (reply.startsWith('2')) accepted.add(rcpt);
    }
  }
}

const kinds = (v: Map<number, RecipientVerdict>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of v.values()) out[x.kind] = (out[x.kind] ?? 0) + 1;
  return out;
};

describe('SmtpTransport against a scripted remote', () => {
  for (const reply of ['552 5.2.2 Mailbox full', '552 Mailbox full']) {
    test(`first recipient gets "${reply}": one transaction, 9 delivered, 1 failed`, async () => {
      const remote = await startRemote({ rcpt: (_a, ctx) => (ctx.index === 0 ? reply : undefined) });
      const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
      const { result, verdicts } = await h.run();
      assert.equal(result.destinationFailure, undefined);
      assert.equal(remote.transactions.length, 1);
      assert.deepEqual(remote.transactions[0]!.rcpts, recipients(10).slice(1).map((r) => r.address));
      assert.deepEqual(kinds(verdicts), { delivered: 9, failed: 1 });
      const failed = verdicts.get(1)!;
      assert.equal(failed.kind, 'failed');
      assert.equal(failed.reply.code, 552);
      assert.equal(failed.reply.enhanced, reply.includes('5.2.2') ? '5.2.2' : undefined);
      assert.equal(failed.reply.text, 'Mailbox full');
      assert.equal(failed.reply.host, `127.0.0.1[127.0.0.1]:${remote.port}`);
      assert.equal(failed.reply.command, 'RCPT TO');
      assert.equal(verdicts.get(2)!.reply.command, 'end of DATA');
      assert.equal(remote.commands.filter((c) => c.line.startsWith('MAIL FROM')).length, 1);
      assert.equal(remote.commands.filter((c) => rcptAddr(c.line)).length, 10, 'nothing sent twice');
      assertNeverTwice(remote);
    });
  }

  for (const reply of ['552 Too many recipients', '452 4.5.3 Too many recipients']) {
    test(`recipient limit 3 answered "${reply}": 4 transactions on one connection, all delivered`, async () => {
      const remote = await startRemote({ rcptLimit: { max: 3, reply } });
      const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
      const { result, verdicts } = await h.run();
      assert.equal(result.destinationFailure, undefined);
      assert.equal(remote.connections.length, 1);
      assert.equal(remote.transactions.length, 4);
      assert.deepEqual(remote.transactions.map((t) => t.rcpts.length), [3, 3, 3, 1]);
      assert.deepEqual(kinds(verdicts), { delivered: 10 });
      assert.equal(h.calls.length, 4, 'recorded after each transaction');
      assert.equal(h.transport.stats.transactions, 4);
      assertNeverTwice(remote);
    });
  }

  test('more recipients than max_recipients_per_transaction: split on one connection', async () => {
    const remote = await startRemote();
    const h = harness(`127.0.0.1:${remote.port}`, { max_recipients_per_transaction: 4 }, [remote]);
    const { verdicts } = await h.run();
    assert.deepEqual(kinds(verdicts), { delivered: 10 });
    assert.deepEqual(remote.transactions.map((t) => t.rcpts.length), [4, 4, 2]);
    assert.equal(remote.connections.length, 1);
    assertNeverTwice(remote);
  });

  test('421 in the middle of the RCPTs: all deferred, destination failure', async () => {
    const remote = await startRemote({ rcpt: (_a, ctx) => (ctx.index === 4 ? '421 4.3.2 Shutting down' : undefined) });
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    const { result, verdicts } = await h.run();
    assert.deepEqual(kinds(verdicts), { deferred: 10 });
    assert.equal(result.destinationFailure?.code, 421);
    assert.equal(result.destinationFailure?.command, 'RCPT TO');
    assert.equal(remote.transactions.length, 0);
    assert.ok(!remote.commands.some((c) => c.line === 'DATA'));
    assertNeverTwice(remote);
  });

  test('connection dropped after the final dot: deferred, possible duplicate, warned', async () => {
    const remote = await startRemote({ dropConnectionAfterData: true });
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    const { result, verdicts } = await h.run({ rcpts: recipients(3) });
    for (const v of verdicts.values()) {
      assert.equal(v.kind, 'deferred');
      assert.equal(v.kind === 'deferred' && v.possibleDuplicate, true);
      assert.equal(v.reply.command, 'end of DATA');
      assert.equal(v.reply.code, 451);
    }
    assert.ok(result.destinationFailure);
    assert.ok(h.logLines.some((l) => l.includes('may be delivered twice (RFC 1047)') && l.includes('"level":40')));
    assert.equal(remote.transactions.length, 1, 'the remote did get the data');
  });

  test('421 greeting on the first host, second host OK: delivered via the second', async () => {
    const busy = await startRemote({ banner: '421 4.3.2 busy' });
    const good = await startRemote();
    const h = harness({ hosts: [`127.0.0.1:${busy.port}`, `127.0.0.1:${good.port}`] }, {}, [busy, good]);
    const { result, verdicts } = await h.run({ rcpts: recipients(2) });
    assert.equal(result.destinationFailure, undefined);
    assert.deepEqual(kinds(verdicts), { delivered: 2 });
    assert.equal(busy.transactions.length, 0);
    assert.equal(good.transactions.length, 1);
    assert.equal(verdicts.get(1)!.reply.host, `127.0.0.1[127.0.0.1]:${good.port}`);
  });

  test('every host refuses: all deferred with our own 451, destination failure', async () => {
    const refusing = await startRemote({ refuse: true });
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const h = harness({ hosts: [`127.0.0.1:${refusing.port}`, `127.0.0.1:${closedPort}`] }, {}, [refusing]);
    const { result, verdicts } = await h.run({ rcpts: recipients(3) });
    assert.deepEqual(kinds(verdicts), { deferred: 3 });
    assert.equal(result.destinationFailure?.code, 451);
    assert.equal(result.destinationFailure?.enhanced, '4.4.1');
    assert.equal(result.destinationFailure?.command, 'connect');
    assert.equal(result.destinationFailure?.host, `127.0.0.1[127.0.0.1]:${closedPort}`);
    assert.equal(refusing.connections.length, 1);
    assert.equal(h.transport.stats.connectionsOpened, 2);
  });

  test('message larger than the server SIZE: failed 5.3.4, no MAIL FROM sent', async () => {
    const remote = await startRemote({ extensions: { pipelining: true, size: 20, enhancedStatusCodes: true } });
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    const { result, verdicts } = await h.run({ rcpts: recipients(3) });
    assert.equal(result.destinationFailure, undefined);
    for (const v of verdicts.values()) {
      assert.equal(v.kind, 'failed');
      assert.equal(v.reply.enhanced, '5.3.4');
      assert.equal(v.reply.code, 552);
    }
    assert.ok(!remote.commands.some((c) => c.line.startsWith('MAIL')));
  });

  test('SMTPUTF8 needed but not offered: failed 5.6.7 without MAIL FROM', async () => {
    const remote = await startRemote();
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    const { verdicts } = await h.run({ rcpts: recipients(1), msg: message({ params: { smtputf8: true } }) });
    assert.equal(verdicts.get(1)!.kind, 'failed');
    assert.equal(verdicts.get(1)!.reply.enhanced, '5.6.7');
    assert.ok(!remote.commands.some((c) => c.line.startsWith('MAIL')));
  });

  test('PIPELINING: MAIL and every RCPT written before the first reply is read', async () => {
    const remote = await startRemote();
    const proxy = await startProxy(remote.port);
    const h = harness(`127.0.0.1:${proxy.port}`, {}, [remote, proxy.asRemote]);
    const { verdicts } = await h.run({ rcpts: recipients(4) });
    assert.deepEqual(kinds(verdicts), { delivered: 4 });
    const seq = proxy.lines();
    const mailAt = seq.findIndex((l) => l.from === 'client' && l.line.startsWith('MAIL FROM'));
    const firstReplyAfterMail = seq.findIndex((l, i) => i > mailAt && l.from === 'server');
    assert.equal(seq.slice(mailAt, firstReplyAfterMail).filter((l) => l.line.startsWith('RCPT TO')).length, 4);
    // DATA only after every RCPT reply (RFC 2920): 1 MAIL + 4 RCPT replies before DATA.
    const dataAt = seq.findIndex((l) => l.from === 'client' && l.line === 'DATA');
    assert.equal(seq.slice(mailAt, dataAt).filter((l) => l.from === 'server').length, 5);
  });

  test('no PIPELINING: each RCPT only after the previous reply', async () => {
    const remote = await startRemote({ extensions: { enhancedStatusCodes: true }, rcpt: (_a, ctx) => (ctx.index === 1 ? '550 5.1.1 No such user' : undefined) });
    const proxy = await startProxy(remote.port);
    const h = harness(`127.0.0.1:${proxy.port}`, {}, [remote, proxy.asRemote]);
    const { verdicts } = await h.run({ rcpts: recipients(4) });
    assert.deepEqual(kinds(verdicts), { delivered: 3, failed: 1 });
    assert.equal(verdicts.get(2)!.kind, 'failed');
    const seq = proxy.lines().filter((l) => !(l.from === 'server' && /^\d{3}-/.test(l.line)));
    const start = seq.findIndex((l) => l.line.startsWith('MAIL FROM'));
    const end = seq.findIndex((l) => l.line === 'DATA');
    const dirs = seq.slice(start, end + 1).map((l) => l.from);
    assert.deepEqual(dirs, ['client', 'server', 'client', 'server', 'client', 'server', 'client', 'server', 'client', 'server', 'client']);
    assertNeverTwice(remote);
  });

  test('HELO fallback when EHLO is not known', async () => {
    const remote = await startRemote({ ehlo: false });
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    const { verdicts } = await h.run({ rcpts: recipients(2) });
    assert.deepEqual(kinds(verdicts), { delivered: 2 });
    assert.ok(remote.commands.some((c) => c.line === 'HELO halcyon.test'));
    assert.deepEqual(remote.transactions[0]!.mailParams, [], 'no ESMTP parameters to a HELO server');
  });

  test('content is dot-stuffed with CRLF line ends (no bare LF is sent)', async () => {
    const remote = await startRemote();
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    await h.run({ rcpts: recipients(1), body: Buffer.from('Subject: x\n\n.dot\nbare\rcr') });
    assert.equal(remote.transactions[0]!.data.toString(), 'Subject: x\r\n\r\n.dot\r\nbare\r\ncr\r\n');
  });

  describe('CHUNKING (BDAT, RFC 3030)', () => {
    const chunking = { pipelining: true, enhancedStatusCodes: true, eightBitMime: true, chunking: true };
    test('offered: the stored bytes go out as BDAT chunks exactly (no dot-stuffing, 8-bit intact), the last marked LAST, no DATA', async () => {
      const remote = await startRemote({ extensions: chunking });
      const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
      // 2.5 MiB: three chunks of at most 1 MiB. A line starting with a dot and 8-bit bytes on the way.
      const head = Buffer.from('Subject: chunks\r\n\r\n.a line that starts with a dot\r\n..two dots\r\n', 'latin1');
      const eight = Buffer.from('caf\u00e9 \u00fcber \u2603\r\n', 'utf8');
      const filler = Buffer.from(`${'x'.repeat(1022)}\r\n`.repeat(2560), 'latin1');
      const body = Buffer.concat([head, eight, filler, Buffer.from('.\r\nend\r\n')]);
      const { verdicts } = await h.run({ rcpts: recipients(2), body });
      assert.deepEqual(kinds(verdicts), { delivered: 2 });
      assert.ok(remote.transactions[0]!.data.equals(body), 'the remote got the stored bytes unchanged');
      const bdats = remote.commands.filter((c) => /^BDAT /.test(c.line)).map((c) => c.line);
      assert.equal(bdats.length, 3, bdats.join(' | '));
      assert.match(bdats[2]!, /^BDAT \d+ LAST$/);
      assert.ok(bdats.slice(0, 2).every((l) => /^BDAT 1048576$/.test(l)), bdats.join(' | '));
      assert.ok(!remote.commands.some((c) => c.line === 'DATA'), 'no DATA command');
      assert.ok(remote.transactions[0]!.mailParams.includes('BODY=8BITMIME'));
      assert.equal(verdicts.get(1)!.reply.command, 'end of DATA');
    });

    test('a chunk refused (552 5.3.4): accepted recipients failed by that reply, no further chunk, RSET before the next transaction', async () => {
      const remote = await startRemote({ extensions: chunking, chunkReply: (n) => (n === 1 ? '552 5.3.4 Message too big for me' : '250 2.0.0 ok') });
      const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
      const big = Buffer.from(`${'y'.repeat(1022)}\r\n`.repeat(1536), 'latin1');
      const { verdicts } = await h.run({ rcpts: recipients(2), body: big });
      assert.deepEqual(kinds(verdicts), { failed: 2 });
      assert.equal(verdicts.get(1)!.reply.code, 552);
      assert.equal(verdicts.get(1)!.reply.command, 'BDAT');
      assert.equal(remote.commands.filter((c) => /^BDAT /.test(c.line)).length, 1, 'no chunk after the refusal');
      // The connection is pooled and reused for the next message: RSET first.
      const again = await h.run({ rcpts: recipients(1), body: BODY });
      assert.deepEqual(kinds(again.verdicts), { delivered: 1 });
      assert.equal(remote.connections.length, 1);
      const verbs = remote.commands.map((c) => c.line.split(' ')[0]);
      assert.ok(verbs.lastIndexOf('RSET') > verbs.indexOf('BDAT'), verbs.join(' '));
      assert.ok(remote.transactions.at(-1)!.data.equals(BODY));
    });

    test('no reply to the LAST chunk: deferred and marked possible duplicate', async () => {
      const remote = await startRemote({ extensions: chunking, dropConnectionAfterData: true });
      const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
      const { verdicts, result } = await h.run({ rcpts: recipients(1) });
      const v = verdicts.get(1)!;
      assert.equal(v.kind, 'deferred');
      assert.equal(v.kind === 'deferred' && v.possibleDuplicate, true);
      assert.ok(result.destinationFailure);
    });
  });

  describe('TLS', () => {
    let pems: { private: string; cert: string };
    before(async () => {
      pems = await generate([{ name: 'commonName', value: 'remote.test' }], { keyType: 'ec', curve: 'P-256' });
    });

    test('STARTTLS offered: the transaction happens over TLS, after a fresh EHLO', async () => {
      const remote = await startRemote({ extensions: { pipelining: true, enhancedStatusCodes: true, starttls: { key: pems.private, cert: pems.cert } } });
      const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
      const { verdicts } = await h.run({ rcpts: recipients(2) });
      assert.deepEqual(kinds(verdicts), { delivered: 2 });
      assert.equal(remote.connections[0]!.tls, true);
      assert.equal(remote.transactions[0]!.connection, 1);
      assert.deepEqual(remote.commands.map((c) => c.line.split(' ')[0]).slice(0, 3), ['EHLO', 'STARTTLS', 'EHLO']);
    });

    test('bytes injected after the 220 to STARTTLS are discarded', async () => {
      const remote = await startRemote({ extensions: { pipelining: true, enhancedStatusCodes: true, starttls: { key: pems.private, cert: pems.cert } } });
      // If the client kept these, it would read them as the reply to its post-TLS EHLO.
      const proxy = await startProxy(remote.port, (s) => s.replace(/^(220 2\.0\.0 Ready to start TLS\r\n)/m, '$1554 5.7.0 injected\r\n'));
      const h = harness(`127.0.0.1:${proxy.port}`, {}, [remote, proxy.asRemote]);
      const { verdicts } = await h.run({ rcpts: recipients(1) });
      assert.equal(verdicts.get(1)!.kind, 'delivered');
      assert.ok(proxy.injected(), 'the proxy did inject');
      assert.ok(h.logLines.some((l) => l.includes('STARTTLS injection defence')));
    });

    test("tls = 'required' and no STARTTLS offered: deferred, destination failure, no MAIL", async () => {
      const remote = await startRemote();
      const h = harness({ hosts: [`127.0.0.1:${remote.port}`], tls: 'required' }, {}, [remote]);
      const { result, verdicts } = await h.run({ rcpts: recipients(2) });
      assert.deepEqual(kinds(verdicts), { deferred: 2 });
      assert.equal(result.destinationFailure?.enhanced, '4.7.10');
      assert.ok(!remote.commands.some((c) => c.line.startsWith('MAIL')));
    });

    test("tls = 'verify' and a self-signed certificate: deferred, destination failure", async () => {
      const remote = await startRemote({ extensions: { pipelining: true, starttls: { key: pems.private, cert: pems.cert } } });
      const h = harness(`127.0.0.1:${remote.port}`, { tls: 'verify' }, [remote]);
      const { result, verdicts } = await h.run({ rcpts: recipients(1) });
      assert.equal(verdicts.get(1)!.kind, 'deferred');
      assert.equal(result.destinationFailure?.command, 'STARTTLS');
      assert.equal(remote.transactions.length, 0);
    });
  });

  test('AUTH with route credentials: authenticated, delivered; wrong password → deferred', async () => {
    const remote = await startRemote({ extensions: { pipelining: true, enhancedStatusCodes: true, auth: { user: 'relay', password: 's3cret' } } });
    const h = harness({ hosts: [`127.0.0.1:${remote.port}`], auth: { user: 'relay', password: 's3cret' } }, {}, [remote]);
    const { verdicts } = await h.run({ rcpts: recipients(2) });
    assert.deepEqual(kinds(verdicts), { delivered: 2 });
    assert.equal(remote.connections[0]!.authUser, 'relay');

    const bad = harness({ hosts: [`127.0.0.1:${remote.port}`], auth: { user: 'relay', password: 'wrong' } }, {}, []);
    const r2 = await bad.run({ rcpts: recipients(1) });
    assert.equal(r2.verdicts.get(1)!.kind, 'deferred');
    assert.equal(r2.result.destinationFailure?.code, 535);
    assert.equal(r2.result.destinationFailure?.command, 'AUTH');
  });

  test('connection reuse: two deliveries in a row use one connection', async () => {
    const remote = await startRemote({ rcpt: (a) => (a === 'u1@example.test' ? '550 5.1.1 No such user' : undefined) });
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    // The first ends without DATA (its only recipient refused): RSET before the next MAIL.
    const first = await h.run({ rcpts: recipients(1) });
    assert.equal(first.verdicts.get(1)!.kind, 'failed');
    const second = await h.run({ rcpts: recipients(3).slice(1), msg: message({ id: 'M2' }) });
    assert.deepEqual(kinds(second.verdicts), { delivered: 2 });
    assert.equal(remote.connections.length, 1);
    assert.equal(h.transport.stats.connectionsOpened, 1);
    const verbs = remote.commands.map((c) => c.line.split(/[ :]/)[0]);
    assert.deepEqual(verbs, ['EHLO', 'MAIL', 'RCPT', 'RSET', 'MAIL', 'RCPT', 'RCPT', 'DATA']);
    await h.transport.close();
    await remote.waitFor(() => remote.commands.some((c) => c.line === 'QUIT'));
  });

  test('DSN offered: NOTIFY, ORCPT, RET and ENVID are passed on', async () => {
    const remote = await startRemote({ extensions: { pipelining: true, dsn: true, enhancedStatusCodes: true, size: 100_000, eightBitMime: true } });
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    const rcpts = recipients(1, { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;Orig+Addr=1@example.test' });
    const msg = message({ params: { smtputf8: false, ret: 'HDRS', envid: 'env id=1' } });
    const body = Buffer.concat([BODY, Buffer.from('caf\xc3\xa9\r\n', 'latin1')]);
    const { verdicts } = await h.run({ rcpts, msg, body });
    assert.equal(verdicts.get(1)!.kind, 'delivered');
    assert.deepEqual(remote.transactions[0]!.mailParams, [`SIZE=${body.length}`, 'BODY=8BITMIME', 'RET=HDRS', 'ENVID=env+20id+3D1']);
    const rcpt = remote.commands.find((c) => c.line.startsWith('RCPT'))!.line;
    assert.equal(rcpt, 'RCPT TO:<u1@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Orig+2BAddr+3D1@example.test');
  });

  test('DSN not offered: no DSN parameters', async () => {
    const remote = await startRemote();
    const h = harness(`127.0.0.1:${remote.port}`, {}, [remote]);
    await h.run({ rcpts: recipients(1, { notify: ['FAILURE'], orcpt: 'rfc822;u1@example.test' }), msg: message({ params: { smtputf8: false, ret: 'FULL', envid: 'x' } }) });
    assert.ok(remote.commands.every((c) => !/NOTIFY|ORCPT|RET=|ENVID/.test(c.line)));
  });
});

interface Proxy {
  port: number;
  /** Lines in the order the proxy saw them (each direction split on CRLF; TLS bytes make no sense and are skipped by the callers' filters). */
  lines(): { from: 'client' | 'server'; line: string }[];
  injected(): boolean;
  asRemote: Remote;
}

/** A TCP proxy that records each direction's chunks in arrival order, optionally rewriting server → client text once. */
async function startProxy(target: number, rewrite?: (s: string) => string): Promise<Proxy> {
  const events: { from: 'client' | 'server'; text: string }[] = [];
  const sockets = new Set<net.Socket>();
  let didInject = false;
  const server = net.createServer((c) => {
    const s = net.connect(target, '127.0.0.1');
    sockets.add(c).add(s);
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
    c.on('close', () => s.destroy());
    s.on('close', () => c.destroy());
    c.on('data', (b) => { events.push({ from: 'client', text: b.toString('latin1') }); s.write(b); });
    s.on('data', (b) => {
      let text = b.toString('latin1');
      if (rewrite && !didInject) {
        const r = rewrite(text);
        if (r !== text) { didInject = true; text = r; }
        events.push({ from: 'server', text });
        c.write(Buffer.from(text, 'latin1'));
        return;
      }
      events.push({ from: 'server', text });
      c.write(b);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    injected: () => didInject,
    lines: () => events.flatMap((e) => e.text.split('\r\n').filter((l) => l.length > 0).map((line) => ({ from: e.from, line }))),
    // Only `close` is used by the harness's cleanup.
    asRemote: { close } as unknown as Remote,
  };
}

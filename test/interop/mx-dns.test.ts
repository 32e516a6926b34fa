/**
 * End to end: Halcyon resolving MX through a real DNS server on loopback
 * (test/support/dns-server, `dns.servers = ["127.0.0.1:PORT"]`) and
 * delivering to SMTP sinks on 127.0.0.1, 127.0.0.2 and 127.0.0.3 — all on
 * the SAME port, since MX delivery uses one `delivery.port` for every host.
 *
 * Checks, through the sinks, the queue and the sender's Maildir: lower MX
 * preference wins; a refused first MX falls back to the next; null MX fails
 * 556 5.1.10 with a DSN; no MX uses the A record; NXDOMAIN fails 5.1.2.
 *
 * The sinks are a few lines of net server here (remote-smtp binds 127.0.0.1
 * only): they accept everything and record who got which recipients. Linux
 * routes all of 127.0.0.0/8 to lo, so the extra addresses need no setup.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startDnsServer, type TestDnsServer } from '../support/dns-server.js';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { submit, message, waitUntil, halcyonMaildir, parseDsn, holdRemoval } from '../support/postfix.js';

interface Sink {
  readonly host: string;
  readonly port: number;
  /** Recipients of each completed transaction. */
  readonly received: string[][];
  close(): Promise<void>;
}

/** A minimal accept-all SMTP server on host:port (port 0 = any). */
function startSink(host: string, port: number): Promise<Sink> {
  const received: string[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    let rcpts: string[] = [];
    let inData = false;
    s.write(`220 ${host} ESMTP sink\r\n`);
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (inData) {
          if (line === '.') {
            inData = false;
            received.push(rcpts);
            rcpts = [];
            s.write('250 2.0.0 Ok\r\n');
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') s.write(`250-${host}\r\n250 PIPELINING\r\n`);
        else if (verb === 'RCPT') { rcpts.push(/<([^>]*)>/.exec(line)?.[1] ?? ''); s.write('250 2.1.5 Ok\r\n'); }
        else if (verb === 'DATA') { inData = true; s.write('354 go\r\n'); }
        else if (verb === 'QUIT') { s.end('221 2.0.0 Bye\r\n'); }
        else if (verb === 'RSET') { rcpts = []; s.write('250 2.0.0 Ok\r\n'); }
        else s.write('250 2.0.0 Ok\r\n');
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve({
        host, port: (server.address() as net.AddressInfo).port, received,
        close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
      });
    });
  });
}

/** Three sinks on 127.0.0.1/2/3 sharing one port (retried when .2/.3 have that port taken). */
async function threeSinks(): Promise<{ port: number; sinks: Sink[] }> {
  for (let i = 0; i < 5; i++) {
    const first = await startSink('127.0.0.1', 0);
    try {
      const rest = await Promise.all(['127.0.0.2', '127.0.0.3'].map((h) => startSink(h, first.port)));
      return { port: first.port, sinks: [first, ...rest] };
    } catch {
      await first.close();
    }
  }
  throw new Error('could not bind 127.0.0.1/.2/.3 on one port in 5 tries');
}

const SENDER = 'sender@local.test';

describe('MX resolution through a real DNS server', { timeout: 60_000 }, () => {
  let dns: TestDnsServer;
  let sinks: Sink[];
  let h: TestApp;
  let hold: { release(): void };

  before(async () => {
    const three = await threeSinks();
    sinks = three.sinks;
    dns = await startDnsServer({
      'pref.test': { MX: [{ preference: 20, exchange: 'mx-b.pref.test' }, { preference: 10, exchange: 'mx-a.pref.test' }] },
      'mx-a.pref.test': { A: ['127.0.0.2'] },
      'mx-b.pref.test': { A: ['127.0.0.3'] },
      // 127.0.0.4 has nothing listening on the port: the connection is refused.
      'fallback.test': { MX: [{ preference: 10, exchange: 'mx1.fallback.test' }, { preference: 20, exchange: 'mx2.fallback.test' }] },
      'mx1.fallback.test': { A: ['127.0.0.4'] },
      'mx2.fallback.test': { A: ['127.0.0.3'] },
      'nullmx.test': { MX: [{ preference: 0, exchange: '.' }], A: ['127.0.0.1'] },
      'amx.test': { A: ['127.0.0.1'] },
      'nx.test': 'NXDOMAIN',
    });
    h = await startTestApp({
      postmaster: 'postmaster@local.test',
      domains: [{ name: 'local.test', mailboxes: [{ user: 'sender' }, { user: 'postmaster' }] }],
      dns: { servers: [dns.address], timeout: '2s' },
      delivery: { port: three.port, tls: 'none', queue_scan_interval: '200ms' },
    }, { scheduler: true });
    hold = holdRemoval(h.app.store.recipients);
  });
  after(async () => {
    hold.release();
    await h?.stop();
    await dns?.close();
    await Promise.all((sinks ?? []).map((s) => s.close()));
  });

  const sink = (host: string): Sink => sinks.find((s) => s.host === host)!;
  const gotBy = (rcpt: string): string[] => sinks.filter((s) => s.received.some((tx) => tx.includes(rcpt))).map((s) => s.host);

  async function send(rcpt: string) {
    const id = await submit(h.port, { from: SENDER, to: [rcpt], content: message(SENDER, [rcpt], `mx ${rcpt}`) });
    await waitUntil(async () => ['delivered', 'failed'].includes((await h.app.store.recipients.getRecipients(id))[0]?.state ?? ''), `${rcpt} final`);
    return (await h.app.store.recipients.getRecipients(id))[0]!;
  }

  /** The DSNs in the sender's mailbox that name `rcpt`. */
  const dsnsFor = (rcpt: string) => halcyonMaildir(h.dataDir, 'local.test', 'sender')
    .map((f) => parseDsn(f.content))
    .filter((d) => d.perRecipient.some((g) => g.get('final-recipient') === `rfc822; ${rcpt}`));

  test('the lower preference MX gets the message', async () => {
    const r = await send('u@pref.test');
    assert.equal(r.state, 'delivered');
    assert.deepEqual(gotBy('u@pref.test'), ['127.0.0.2']);
    assert.equal(r.lastReply?.host, `mx-a.pref.test[127.0.0.2]:${sink('127.0.0.2').port}`);
  });

  test('a refused first MX falls back to the second', async () => {
    const r = await send('u@fallback.test');
    assert.equal(r.state, 'delivered');
    assert.deepEqual(gotBy('u@fallback.test'), ['127.0.0.3']);
    assert.match(r.lastReply?.host ?? '', /^mx2\.fallback\.test\[127\.0\.0\.3\]:/);
  });

  test('no MX record → the domain\'s A record is used', async () => {
    const r = await send('u@amx.test');
    assert.equal(r.state, 'delivered');
    assert.deepEqual(gotBy('u@amx.test'), ['127.0.0.1']);
  });

  test('null MX → failed 556 5.1.10, nothing sent, one DSN', async () => {
    const r = await send('u@nullmx.test');
    assert.equal(r.state, 'failed');
    assert.equal(r.lastReply?.enhanced, '5.1.10');
    assert.equal(r.lastReply?.code, 556);
    assert.deepEqual(gotBy('u@nullmx.test'), [], 'the A record must not be used for a null-MX domain');
    await waitUntil(() => dsnsFor('u@nullmx.test').length >= 1, 'the null-MX DSN');
    const [dsn] = dsnsFor('u@nullmx.test');
    assert.equal(dsnsFor('u@nullmx.test').length, 1);
    assert.equal(dsn!.perRecipient[0]!.get('action'), 'failed');
    assert.equal(dsn!.perRecipient[0]!.get('status'), '5.1.10');
  });

  test('NXDOMAIN → failed 5.1.2, nothing sent, one DSN', async () => {
    const r = await send('u@nx.test');
    assert.equal(r.state, 'failed');
    assert.equal(r.lastReply?.enhanced, '5.1.2');
    assert.equal(r.attempts, 1);
    assert.deepEqual(gotBy('u@nx.test'), []);
    await waitUntil(() => dsnsFor('u@nx.test').length >= 1, 'the NXDOMAIN DSN');
    assert.equal(dsnsFor('u@nx.test').length, 1);
    assert.equal(dsnsFor('u@nx.test')[0]!.perRecipient[0]!.get('status'), '5.1.2');
  });
});

/**
 * test/ops/queue-tools — `halcyon queue shape` (qshape) and `halcyon queue
 * cat` (postcat), the message search (`?q=`, `queue list --search`) and the
 * throughput ring (GET /api/stats/throughput), with the real CLI against a
 * running server (admin API) and then against its stopped data_dir, after
 * real deliveries to a remote that answers 250 / 451 / 550 and to a
 * destination that refuses connections; and that neither command creates a
 * file where there is no queue.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type SpawnedHalcyon } from '../support/halcyon.js';
import type { Remote } from '../support/remote-smtp.js';
import { api, parseProm, until } from './helpers.js';
import { startPostmasterScene, type PostmasterScene } from './scene.js';

interface Entry { message: { id: string; held: boolean; sender: string }; recipients: { address: string; state: string }[] }
interface Row { key: string; total: number; counts: number[] }
interface Shape { by: string; bucketsMinutes: (number | null)[]; total: Row; held: Row; rows: Row[]; heldRows: Row[] }
interface Throughput { node: string; minutes: { at: number; sent: number; deferred: number; bounced: number }[] }

const ESC = '\x1b';
/** A subject that would clear the screen and retitle the terminal if it were printed as it is. */
const HOSTILE = `pay ${ESC}[2J${ESC}]0;owned${ESC}\\ now`;

describe('queue shape, queue cat, search and throughput', () => {
  let remote: Remote;
  let h: SpawnedHalcyon;
  let deadPort: number;
  let scene: PostmasterScene;
  let three: string; // ok@ (250), bad@ (550), later@ (451)
  let stuck: string; // carol@dead.test: connection refused
  let held: string; // dave@dead.test, held
  const cli = (...args: string[]) => runCli([...args, '--config', h.configFile]);
  const sendmail = (args: string[], input: string) => runCli(['sendmail', '-C', h.configFile, ...args], { input });
  const list = async (q: string) => (await api(h.httpPort!, 'GET', `/api/queue?q=${encodeURIComponent(q)}`)).json as Entry[];

  before(async () => {
    scene = await startPostmasterScene();
    ({ h, remote, deadPort } = scene);
    let r = await sendmail(['-f', 'alice@sink.test', 'ok@sink.test', 'bad@sink.test', 'later@sink.test'],
      `Subject: ${HOSTILE}\nMessage-ID: <Needle-4711@src.test>\n\nfirst line\nsecond ${ESC}[31mred\n`);
    assert.equal(r.code, 0, r.stderr);
    await until('three outcomes', async () => {
      const l = await list('later@sink.test');
      return l.length === 1 && l[0]!.recipients.every((x) => x.state !== 'queued' && x.state !== 'inflight') && l;
    });
    three = (await list('later@sink.test'))[0]!.message.id;
    r = await sendmail(['-f', 'bob@src.test', 'carol@dead.test'], 'Subject: stuck\n\nx\n');
    assert.equal(r.code, 0, r.stderr);
    stuck = (await until('carol deferred', async () => {
      const l = await list('carol@');
      return l.length === 1 && l[0]!.recipients[0]!.state === 'deferred' && l;
    }))[0]!.message.id;
    // dead.test is in backoff now: this one waits without an attempt, and is held.
    r = await sendmail(['-f', 'erin@src.test', 'dave@dead.test'], 'Subject: hold me\n\nx\n');
    assert.equal(r.code, 0, r.stderr);
    held = (await until('dave queued', async () => { const l = await list('dave@'); return l.length === 1 && l; }))[0]!.message.id;
    assert.equal((await cli('queue', 'hold', held)).code, 0);
  });
  after(() => scene.close());

  /** What a postmaster reads in `queue shape`, on either backend. */
  async function checkShape(): Promise<void> {
    const text = await cli('queue', 'shape');
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.split('\n');
    assert.match(lines[0]!, /^ +T +5 +10 +20 +40 +80 +160 +320 +640 +1280 +1280\+$/);
    // Every message is minutes old: all in the first bucket. later@ and carol@ wait; dave@ is held.
    assert.match(lines[1]!, /^ +TOTAL +2 +2( +0){9}$/);
    assert.ok(lines.some((l) => /^ *dead\.test +1 +1( +0){9}$/.test(l)), text.stdout);
    assert.ok(lines.some((l) => /^ *sink\.test +1 +1( +0){9}$/.test(l)), text.stdout);
    const heldAt = lines.indexOf('held (no delivery until released):');
    assert.ok(heldAt > 0, text.stdout);
    assert.match(lines[heldAt + 2]!, /^ +HELD +1 +1( +0){9}$/);
    assert.match(lines[heldAt + 3]!, /^ *dead\.test +1 +1( +0){9}$/);
    // The columns line up: every table line has the width of the heading.
    assert.ok(lines.filter((l) => /\d$/.test(l)).every((l) => l.length === lines[0]!.length), text.stdout);

    const s = JSON.parse((await cli('queue', 'shape', '--json')).stdout) as Shape;
    assert.equal(s.by, 'domain');
    assert.deepEqual(s.bucketsMinutes, [5, 10, 20, 40, 80, 160, 320, 640, 1280, null]);
    assert.deepEqual([s.total.total, s.held.total], [2, 1]);
    assert.deepEqual(s.rows.map((r) => r.key).sort(), ['dead.test', 'sink.test']);
    assert.deepEqual(s.heldRows.map((r) => [r.key, r.total]), [['dead.test', 1]]);
    const byDest = JSON.parse((await cli('queue', 'shape', '--by', 'destination', '--json')).stdout) as Shape;
    assert.equal(byDest.by, 'destination');
    // Routed domains go to the route's host: the rows are named by it.
    assert.ok(byDest.rows.some((r) => r.key.includes(String(deadPort)) && r.total === 1), JSON.stringify(byDest.rows));
    // qshape -s: messages by sender domain. alice@sink.test's message waits on later@ (one message, though
    // two of its recipients are final), bob@src.test's on carol@; erin@src.test's is held.
    const bySender = await cli('queue', 'shape', '--by', 'sender-domain');
    assert.equal(bySender.code, 0, bySender.stderr);
    const sl = bySender.stdout.split('\n');
    assert.match(sl[1]!, /^ +TOTAL +2 +2( +0){9}$/);
    assert.ok(sl.some((l) => /^ *sink\.test +1 +1( +0){9}$/.test(l)), bySender.stdout);
    assert.ok(sl.some((l) => /^ *src\.test +1 +1( +0){9}$/.test(l)), bySender.stdout);
    const sj = JSON.parse((await cli('queue', 'shape', '--by', 'sender-domain', '--json')).stdout) as Shape & { counts: string };
    assert.deepEqual([sj.by, sj.counts], ['sender-domain', 'messages']);
    assert.deepEqual(sj.heldRows.map((r) => [r.key, r.total]), [['src.test', 1]]);
    assert.equal((await cli('queue', 'shape', '--by', 'sender')).code, 2);
  }

  /** What a postmaster reads in `queue cat`, on either backend. */
  async function checkCat(): Promise<void> {
    const cat = await cli('queue', 'cat', three);
    assert.equal(cat.code, 0, cat.stderr);
    const out = cat.stdout;
    assert.ok(!out.includes(ESC), 'no escape character reaches the terminal');
    assert.match(out, new RegExp(`^\\*\\*\\* ENVELOPE RECORDS ${three} \\*\\*\\*\n`));
    assert.match(out, /\nsender: +alice@sink\.test\n/);
    assert.match(out, /\nclient: +\S+ \[127\.0\.0\.1\]\n/);
    const hostRe = `127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${remote.port}`;
    assert.match(out, /\nrecipient: +<ok@sink\.test> +delivered, 1 attempt\(s\)/);
    assert.match(out, new RegExp(`\n    \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  delivered +host ${hostRe} said: 250 `));
    assert.match(out, new RegExp(`\n    \\S+Z  failed +host ${hostRe} said: 550 5\\.1\\.1 no such user \\(in reply to RCPT TO\\) \\[InvalidRecipient\\]\n`));
    assert.match(out, new RegExp(`\nrecipient: +<later@sink\\.test> +deferred, 1 attempt\\(s\\), next attempt in [^\n]*\n(?:  original_recipient: [^\n]*\n)?    \\S+Z  deferred +host ${hostRe} said: 451 4\\.2\\.0 try later \\(in reply to RCPT TO\\) \\[TransientFailure\\]\n`));
    assert.match(out, new RegExp(`\n\\*\\*\\* HEADERS ${three} \\*\\*\\*\nReceived: `));
    assert.match(out, /\nSubject: pay \\x1b\[2J\\x1b\]0;owned\\x1b\\ now\n/);
    assert.match(out, /\nMessage-ID: <Needle-4711@src\.test>\n/);
    assert.match(out, new RegExp(`\n\\*\\*\\* BODY ${three} \\*\\*\\*\nfirst line\nsecond \\\\x1b\\[31mred\n\\*\\*\\* END ${three} \\*\\*\\*\n$`));

    const headers = (await cli('queue', 'cat', '-h', three)).stdout;
    assert.match(headers, /^\*\*\* HEADERS /);
    assert.doesNotMatch(headers, /ENVELOPE|BODY|first line/);
    const body = (await cli('queue', 'cat', three, '-b')).stdout;
    assert.equal(body, `*** BODY ${three} ***\nfirst line\nsecond \\x1b[31mred\n*** END ${three} ***\n`);
    const env = (await cli('queue', 'cat', three, '-e')).stdout;
    assert.match(env, /recipient: +<bad@sink\.test> +failed/);
    assert.doesNotMatch(env, /Subject|first line/);

    const j = JSON.parse((await cli('queue', 'cat', three, '--json')).stdout) as {
      message: { sender: string }; headers: { name: string; value: string }[]; body: string;
      recipients: { address: string; state: string; history: { reply?: { code: number; host?: string; command?: string } }[] }[];
    };
    assert.equal(j.message.sender, 'alice@sink.test');
    assert.equal(j.headers.find((x) => x.name === 'Subject')?.value, HOSTILE);
    assert.equal(j.body, `first line\r\nsecond ${ESC}[31mred\r\n`);
    const bad = j.recipients.find((r) => r.address === 'bad@sink.test')!;
    assert.deepEqual([bad.state, bad.history[0]?.reply?.code, bad.history[0]?.reply?.command], ['failed', 550, 'RCPT TO']);

    // --raw: the stored bytes, for a file; the body exactly as sent (CRLF lines).
    const raw = await cli('queue', 'cat', three, '--raw', '-b');
    assert.equal(raw.stdout, `first line\r\nsecond ${ESC}[31mred\r\n`);
    assert.match((await cli('queue', 'cat', three, '--raw')).stdout, /^Received: [\s\S]*\r\nSubject: pay \x1b\[2J/);

    const unknown = await cli('queue', 'cat', '0000000000000000');
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /no message 0000000000000000/);
    const heldCat = (await cli('queue', 'cat', held, '-e')).stdout;
    assert.match(heldCat, /\nheld: +yes/);
    assert.match(heldCat, /<dave@dead\.test> +queued, 0 attempt\(s\), held/);
  }

  test('against the running server: shape, cat, search and the throughput of real deliveries', async () => {
    await checkShape();
    await checkCat();

    // Search: the queue id (any case), the sender, a recipient, the Message-ID — none is case-sensitive.
    assert.deepEqual((await list(three.toLowerCase())).map((e) => e.message.id), [three]);
    assert.deepEqual((await list('BOB@src')).map((e) => e.message.id), [stuck]);
    assert.deepEqual((await list('carol@dead')).map((e) => e.message.id), [stuck]);
    assert.deepEqual((await list('needle-4711')).map((e) => e.message.id), [three]);
    assert.deepEqual((await list('dead.test')).map((e) => e.message.id), [stuck, held]);
    assert.deepEqual(await list('no-such-thing'), []);
    const limited = (await api(h.httpPort!, 'GET', '/api/queue?q=dead.test&limit=1')).json as Entry[];
    assert.deepEqual(limited.map((e) => e.message.id), [stuck]);
    const deferredOnly = (await api(h.httpPort!, 'GET', '/api/queue?q=src.test&state=deferred')).json as Entry[];
    assert.deepEqual(deferredOnly.map((e) => e.message.id), [three, stuck]);
    assert.equal((await api(h.httpPort!, 'GET', '/api/queue?limit=zero')).status, 400);
    const searched = await cli('queue', 'list', '--search', 'NEEDLE');
    assert.match(searched.stdout, new RegExp(`^${three} `));
    assert.doesNotMatch(searched.stdout, new RegExp(stuck));

    // The raw message over the API: message/rfc822, never sniffed as a page.
    const res = await fetch(`http://127.0.0.1:${h.httpPort!}/api/queue/${three}/content`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'message/rfc822');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await res.text(), /\r\n\r\nfirst line\r\n/);
    assert.equal((await api(h.httpPort!, 'GET', '/api/queue/0000000000000000/content')).status, 404);

    // Throughput: the bounce DSN to alice@ may still be on its way; then the ring agrees with /metrics.
    const t = await until('the DSN sent', async () => {
      const x = (await api(h.httpPort!, 'GET', '/api/stats/throughput')).json as Throughput;
      return x.minutes.reduce((n, m) => n + m.sent, 0) >= 2 && x;
    });
    assert.equal(typeof t.node, 'string');
    assert.equal(t.minutes.length, 60);
    for (let i = 1; i < 60; i++) assert.equal(t.minutes[i]!.at - t.minutes[i - 1]!.at, 60_000);
    const sum = (k: 'sent' | 'deferred' | 'bounced') => t.minutes.reduce((n, m) => n + m[k], 0);
    // ok@ and the DSN to alice@ sent; later@ and carol@ deferred once each (dave@ never tried); bad@ bounced.
    assert.deepEqual([sum('sent'), sum('deferred'), sum('bounced')], [2, 2, 1]);
    const m = parseProm((await api(h.httpPort!, 'GET', '/metrics')).text);
    assert.deepEqual([sum('sent'), sum('deferred'), sum('bounced')],
      [m('halcyon_recipients_total', { status: 'sent' }), m('halcyon_recipients_total', { status: 'deferred' }), m('halcyon_recipients_total', { status: 'bounced' })]);
  });

  test('against the stopped data_dir: the same shape, cat and search, read-only', async () => {
    await h.kill('SIGTERM');
    await checkShape();
    await checkCat();
    const searched = await cli('queue', 'list', '--search', 'needle-4711', '--json');
    assert.deepEqual((JSON.parse(searched.stdout) as Entry[]).map((e) => e.message.id), [three]);
  });

  test('shape and cat where there is no queue: an error, and no file created', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'halcyon-noqueue-'));
    const dataDir = join(dir, 'var');
    const config = join(dir, 'halcyon.toml');
    writeFileSync(config, `data_dir = "${dataDir}"\nhostname = "mx.halcyon.test"\n[http]\nenabled = false\n`);
    for (const args of [['queue', 'shape'], ['queue', 'cat', '0123456789ABCDEF'], ['queue', 'cat', '--raw', '0123456789ABCDEF']]) {
      const r = await runCli([...args, '--config', config]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /no queue in /);
      assert.equal(existsSync(dataDir), false, `${args.join(' ')} created ${dataDir}`);
    }
  });
});

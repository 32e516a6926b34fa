/**
 * The injection API (issue #24) against the real `halcyon serve`, over real
 * sockets: structured content (UTF-8, an attachment, per-recipient `{{var}}`)
 * composed, delivered and parsed back with mailparser from what the remote
 * received; recipients rejected one by one (a bad address, a suppressed one)
 * while the others are queued; tenant, campaign and metadata in the events,
 * the admin API, `queue show` and the log; tenant from an SMTP AUTH user and
 * from X-Halcyon-* headers, which are gone from the stored message; the
 * Idempotency-Key (sequential, 6 concurrent, another key, another body);
 * the older POST /api/messages shape (all or nothing); and the limits (413 size, 413
 * recipients, 429 with Retry-After).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { hashPassword } from '../../src/inbound/auth.js';
import type { HalcyonEvent } from '../../src/queue/event.js';
import { runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { logLines, parseProm, until } from './helpers.js';

const APP = 'app-secret';
const OTHER = 'other-secret';

interface Answer { status: number; json: Record<string, unknown>; headers: Headers }

async function post(port: number, path: string, body: unknown, token: string, key?: string): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...(key ? { 'idempotency-key': key } : {}) },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

async function get(port: number, path: string, token = APP): Promise<{ status: number; json: unknown; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

/** Messages in the queue with a recipient containing `q`. */
async function queued(port: number, q: string): Promise<{ message: { id: string; tenant?: string; campaign?: string } }[]> {
  return (await get(port, `/api/queue?q=${encodeURIComponent(q)}`)).json as { message: { id: string } }[];
}

/** A webhook receiver that keeps every event it is sent. */
async function startReceiver(): Promise<{ port: number; events: HalcyonEvent[]; close(): Promise<void> }> {
  const events: HalcyonEvent[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      events.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as HalcyonEvent[]));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, events, close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }) };
}

describe('POST /api/inject/v1', () => {
  let remote: Remote;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let h: SpawnedHalcyon;
  let port: number;

  before(async () => {
    remote = await startRemote({ extensions: { pipelining: true, size: 10_000_000, eightBitMime: true, enhancedStatusCodes: true } });
    receiver = await startReceiver();
    h = await spawnHalcyon(`
log_level = "info"
[relay]
networks = []
[[users]]
name = "alice"
password_hash = "${hashPassword('pa')}"
tenant = "acme-corp"
[[users]]
name = "bob"
password_hash = "${hashPassword('pb')}"
[routes]
"sink.test" = "127.0.0.1:${remote.port}"
"hold.test" = "127.0.0.1:9"
[delivery]
tls = "none"
queue_scan_interval = "200ms"
[http]
require_token = true
[[http.tokens]]
name = "app"
token = "${APP}"
[[http.tokens]]
name = "other"
token = "${OTHER}"
[[events.webhooks]]
url = "http://127.0.0.1:${receiver.port}/"
secret = "s"
events = ["received", "delivered"]
`, { http: true, captureStdout: true });
    port = h.httpPort!;
  });
  after(async () => {
    await h.kill('SIGTERM');
    await remote.close();
    await receiver.close();
  });

  test('structured content with UTF-8 and an attachment, per recipient; bad and suppressed recipients rejected alone', async () => {
    assert.equal((await post(port, '/api/suppressions', { address: 'gone@sink.test', reason: 'test' }, APP)).status, 200);
    const pdf = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x10, 0x80]);
    const r = await post(port, '/api/inject/v1', {
      from: 'news@sender.test',
      recipients: [
        { email: 'anna@sink.test', vars: { name: 'Anna', code: 'A-1' } },
        { email: 'ben@sink.test', vars: { name: 'Ben <b>', code: 'B-2' } },
        'not an address',
        'gone@sink.test',
      ],
      tenant: 'acme', campaign: 'spring-2026', metadata: { order: 42, list: 'vip' },
      content: {
        subject: 'Grüße {{name}} ✓', text: 'Hallo {{name}}, dein Code: {{code}}. Grüße ✓', html: '<p>Hallo {{name}} ✓</p>',
        headers: { 'X-Mailer-Note': 'tests' },
        attachments: [{ filename: 'rechnung.pdf', content_type: 'application/pdf', content: pdf.toString('base64') }],
      },
    }, APP);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const rcpts = r.json.recipients as { email: string; status: string; reason: string | null; queue_id: string | null }[];
    assert.deepEqual(rcpts.map((x) => [x.email, x.status]), [['anna@sink.test', 'accepted'], ['ben@sink.test', 'accepted'], ['not an address', 'rejected'], ['gone@sink.test', 'rejected']]);
    assert.match(rcpts[2]!.reason!, /invalid address/);
    assert.match(rcpts[3]!.reason!, /^550 5\.1\.1 .*suppressed/);
    assert.equal(r.json.queue_id, rcpts[0]!.queue_id, 'queue_id is the first message');
    assert.notEqual(rcpts[0]!.queue_id, rcpts[1]!.queue_id, 'vars: one message per recipient');

    await remote.waitFor(() => ['anna@sink.test', 'ben@sink.test'].every((a) => remote.transactions.some((t) => t.rcpts.includes(a))), 20_000);
    for (const [addr, name, code] of [['anna@sink.test', 'Anna', 'A-1'], ['ben@sink.test', 'Ben <b>', 'B-2']] as const) {
      const tx = remote.transactions.find((t) => t.rcpts.includes(addr))!;
      assert.deepEqual(tx.rcpts, [addr], 'each message has its own recipient only');
      const mail = await simpleParser(tx.data);
      assert.equal(mail.subject, `Grüße ${name} ✓`);
      assert.equal(mail.text?.trim(), `Hallo ${name}, dein Code: ${code}. Grüße ✓`);
      assert.equal(mail.html && mail.html.trim(), `<p>Hallo ${name.replace('<', '&lt;').replace('>', '&gt;')} ✓</p>`);
      assert.equal(mail.attachments.length, 1);
      assert.equal(mail.attachments[0]!.filename, 'rechnung.pdf');
      assert.equal(mail.attachments[0]!.contentType, 'application/pdf');
      assert.deepEqual(mail.attachments[0]!.content, pdf);
      assert.equal(mail.headers.get('x-mailer-note'), 'tests');
      assert.equal((mail.to as { text: string }).text, addr);
      assert.equal((mail.from as { text: string }).text, 'news@sender.test');
      assert.ok(mail.messageId, 'a Message-ID');
    }

    // The events of both recipients carry tenant, campaign and metadata.
    await until('received and delivered events', () => ['anna@sink.test', 'ben@sink.test'].every((a) =>
      receiver.events.some((e) => e.recipient === a && e.type === 'delivered')));
    for (const e of receiver.events.filter((x) => x.recipient === 'anna@sink.test' || x.recipient === 'ben@sink.test')) {
      assert.equal(e.tenant, 'acme');
      assert.equal(e.campaign, 'spring-2026');
      assert.deepEqual(e.metadata, { order: 42, list: 'vip' });
    }
    // …and the accepted log lines and the tenant metric.
    const lines = logLines(h).filter((l) => l.event === 'accepted' && (l.queue_id === rcpts[0]!.queue_id || l.queue_id === rcpts[1]!.queue_id));
    assert.equal(lines.length, 2);
    assert.ok(lines.every((l) => l.tenant === 'acme' && l.campaign === 'spring-2026'));
    await until('the delivery line with the tenant', () => logLines(h).some((l) => l.event === 'delivery' && l.to === 'anna@sink.test' && l.tenant === 'acme' && l.campaign === 'spring-2026'));
    const m = parseProm((await get(port, '/metrics')).text);
    assert.ok((m('halcyon_messages_accepted_by_tenant_total', { tenant: 'acme' }) ?? 0) >= 2);
  });

  test('raw content, one message for every recipient; the older /api/messages shape still answers with its id', async () => {
    const r = await post(port, '/api/inject/v1', { from: 'a@sender.test', recipients: ['r1@hold.test', 'r2@hold.test'], tenant: 't-raw', content: 'Subject: raw\r\n\r\nhello\r\n' }, APP);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const ids = (r.json.recipients as { queue_id: string }[]).map((x) => x.queue_id);
    assert.deepEqual(ids, [r.json.queue_id, r.json.queue_id]);
    const shown = (await get(port, `/api/queue/${r.json.queue_id as string}`)).json as { message: { tenant?: string } };
    assert.equal(shown.message.tenant, 't-raw');
    const old = await post(port, '/api/messages', { from: 'a@sender.test', to: ['r3@hold.test'], content: 'Subject: old\n\nx\n' }, APP);
    assert.equal(old.status, 201);
    assert.equal(old.json.id, old.json.queue_id);
    assert.equal((await post(port, '/api/messages', { from: 'a@sender.test', to: [], content: 'x' }, APP)).status, 400);
    // The older shape is all or nothing, as it always was (sendmail sends it): one bad recipient, nothing queued.
    const strict = await post(port, '/api/messages', { from: 'a@sender.test', to: ['strict@hold.test', 'bad address'], content: 'x' }, APP);
    assert.equal(strict.status, 400);
    assert.match(String(strict.json.message), /bad address/);
    assert.equal((await queued(port, 'strict@hold.test')).length, 0);
    const none = await post(port, '/api/inject/v1', { from: 'a@sender.test', recipients: ['nope'], content: 'x' }, APP);
    assert.equal(none.status, 400);
    assert.equal(none.json.error, 'no_recipient_accepted');
    assert.equal(none.json.queue_id, null);
  });

  test('Idempotency-Key: twice in a row, 6 at once → one message each and the same answer; another key → another; another body → 422', async () => {
    const body = { from: 'a@sender.test', recipients: ['idem1@hold.test'], content: { subject: 'once', text: 'x' } };
    const first = await post(port, '/api/inject/v1', body, APP, 'key-seq-1');
    assert.equal(first.status, 201);
    const again = await post(port, '/api/inject/v1', body, APP, 'key-seq-1');
    assert.equal(again.status, 201);
    assert.deepEqual(again.json, first.json);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal((await queued(port, 'idem1@hold.test')).length, 1);

    const body6 = { from: 'a@sender.test', recipients: ['idem6@hold.test'], content: { subject: 'six', text: 'x' } };
    const six = await Promise.all(Array.from({ length: 6 }, () => post(port, '/api/inject/v1', body6, APP, 'key-par-6')));
    assert.ok(six.every((x) => x.status === 201), six.map((x) => x.status).join());
    for (const x of six) assert.deepEqual(x.json, six[0]!.json);
    assert.equal((await queued(port, 'idem6@hold.test')).length, 1);

    assert.equal((await post(port, '/api/inject/v1', body, APP, 'key-seq-2')).status, 201);
    assert.equal((await queued(port, 'idem1@hold.test')).length, 2, 'a different key queues again');
    // Keys are per token: another token's same key is another request.
    assert.equal((await post(port, '/api/inject/v1', body, OTHER, 'key-seq-1')).status, 201);
    assert.equal((await queued(port, 'idem1@hold.test')).length, 3);

    // A retry answers as the first request did even when its recipient would be refused now (suppressed since).
    const later = { from: 'a@sender.test', recipients: ['later-gone@hold.test'], content: 'Subject: l\r\n\r\nx\r\n' };
    const l1 = await post(port, '/api/inject/v1', later, APP, 'key-later');
    assert.equal(l1.status, 201);
    assert.equal((await post(port, '/api/suppressions', { address: 'later-gone@hold.test' }, APP)).status, 200);
    const l2 = await post(port, '/api/inject/v1', later, APP, 'key-later');
    assert.equal(l2.status, 201);
    assert.deepEqual(l2.json, l1.json);
    assert.equal((await post(port, '/api/inject/v1', later, APP, 'key-later-new')).status, 400, 'a new request is refused: no recipient accepted');

    const changed = await post(port, '/api/inject/v1', { ...body, content: { subject: 'other', text: 'x' } }, APP, 'key-seq-1');
    assert.equal(changed.status, 422);
    assert.equal(changed.json.error, 'idempotency_key_reused');
    assert.equal((await queued(port, 'idem1@hold.test')).length, 3);
  });

  test('tenant from the AUTH user, or from X-Halcyon-* headers, which are removed from the stored message', async () => {
    const send = async (user: string, pass: string, to: string, head: string): Promise<string> => {
      const c = await RawSmtpClient.connect(h.port);
      try {
        await c.read();
        await c.expect('EHLO client.test', 250);
        await c.expect(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`, 235);
        const r = await c.send({ from: `${user}@sender.test`, to: [to], content: `${head}Subject: auth\r\n\r\nbody\r\n`, ehlo: false });
        assert.equal(r.code, 250, r.lines.join(' '));
        return /queued as (\S+)/.exec(r.lines.join(' '))![1]!;
      } finally {
        c.close();
      }
    };
    const a = await send('alice', 'pa', 'auth1@hold.test', 'X-Halcyon-Campaign: welcome\r\n');
    const b = await send('bob', 'pb', 'auth2@hold.test', 'X-Halcyon-Tenant: beta\r\nX-Halcyon-Campaign: promo\r\n');
    const c = await send('bob', 'pb', 'auth3@hold.test', '');
    const shown = async (id: string) => ((await get(port, `/api/queue/${id}`)).json as { message: { tenant?: string; campaign?: string } }).message;
    assert.deepEqual([await shown(a), await shown(b), await shown(c)].map((m) => [m.tenant, m.campaign]),
      [['acme-corp', 'welcome'], ['beta', 'promo'], ['bob', undefined]]);
    for (const id of [a, b]) assert.doesNotMatch((await get(port, `/api/queue/${id}/content`)).text, /X-Halcyon-(Tenant|Campaign)/i);
    const env = { ...process.env, HALCYON_TOKEN: APP };
    const list = await runCli(['queue', 'list', '--config', h.configFile], { env });
    assert.match(list.stdout, new RegExp(`${b}.*tenant=beta  campaign=promo`));
    const show = await runCli(['queue', 'show', a, '--config', h.configFile], { env });
    assert.match(show.stdout, /tenant: +acme-corp\n +campaign: +welcome/);
  });
});

describe('injection limits', () => {
  let h: SpawnedHalcyon;
  before(async () => {
    h = await spawnHalcyon(`
[routes]
"hold.test" = "127.0.0.1:9"
[smtp]
max_message_size = "4KiB"
[inject]
max_recipients = 2
rate = 0.01
burst = 2
[http]
require_token = true
[[http.tokens]]
name = "a"
token = "ta"
[[http.tokens]]
name = "b"
token = "tb"
[[http.tokens]]
name = "c"
token = "tc"
`, { http: true });
  });
  after(() => h.kill('SIGTERM'));

  test('too many recipients → 413 too_many_recipients; a message too big → 413; past the rate → 429 with Retry-After', async () => {
    const port = h.httpPort!;
    const many = await post(port, '/api/inject/v1', { from: 'a@s.test', recipients: ['1@hold.test', '2@hold.test', '3@hold.test'], content: 'x' }, 'ta');
    assert.equal(many.status, 413);
    assert.equal(many.json.error, 'too_many_recipients');
    const big = await post(port, '/api/inject/v1', { from: 'a@s.test', recipients: ['1@hold.test'], content: { text: 'x'.repeat(8000) } }, 'tb');
    assert.equal(big.status, 413);
    assert.equal(big.json.error, 'message_too_big');
    const body = { from: 'a@s.test', recipients: ['1@hold.test'], content: 'Subject: r\r\n\r\nx\r\n' };
    assert.equal((await post(port, '/api/inject/v1', body, 'tc')).status, 201);
    assert.equal((await post(port, '/api/inject/v1', body, 'tc')).status, 201);
    const limited = await post(port, '/api/inject/v1', body, 'tc');
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });
});

/**
 * test/ops/logs — the log a postmaster greps, read from a real `halcyon serve`
 * (its stdout) driven over real sockets: every reject has one line naming the
 * client, HELO, sender, recipient and the reply sent (`NOQUEUE: reject:` as
 * with Postfix); the accepted line carries Message-ID and size; `grep
 * QUEUEID` tells a message's life from received to removed; every admin
 * action names who took it (the API token's name) and every queue id it
 * touched; with the server stopped the CLI's actions go to DATA_DIR/admin.log
 * under the Unix user's name, and read-only commands create no such file.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { api, logLines, until, type LogLine } from './helpers.js';

const TOKEN = 's3cret-token-of-alice';

describe('logs that tell every story', () => {
  let h: SpawnedHalcyon;
  const injected: string[] = [];

  before(async () => {
    const deadPort = await freePort(); // nothing listens: recipients there stay deferred
    h = await spawnHalcyon(`
log_level = "info"
[relay]
networks = []
[delivery]
retry_initial = "1h"
destination_backoff = "1h"
[routes]
"dead.test" = "127.0.0.1:${deadPort}"
[http]
tokens = [{ name = "ops-alice", token = "${TOKEN}" }]
`, { http: true, captureStdout: true });
  });
  after(async () => {
    await h.kill('SIGTERM');
    rmSync(h.dataDir, { recursive: true, force: true });
  });

  const find = (what: string, pred: (l: LogLine) => boolean) => until(what, () => logLines(h).find(pred));

  test('an unknown user and a relay attempt each get one reject line with client, HELO, sender, recipient and reply', async () => {
    const c = await RawSmtpClient.connect(h.port);
    try {
      await c.read();
      await c.expect('EHLO client.example', 250);
      await c.expect('MAIL FROM:<alice@example.net>', 250);
      const unknown = await c.cmd('RCPT TO:<nobody@localhost>');
      assert.equal(unknown.code, 550);
      const relay = await c.cmd('RCPT TO:<bob@elsewhere.test>');
      assert.equal(relay.code, 554);
      await c.cmd('QUIT');
    } finally {
      c.close();
    }
    const u = await find('the unknown-user reject line', (l) => l.event === 'reject' && l.to === 'nobody@localhost');
    assert.equal(u.reason, 'unknown_user');
    assert.equal(u.stage, 'RCPT');
    assert.equal(u.ip, '127.0.0.1');
    assert.equal(u.helo, 'client.example');
    assert.equal(u.from, 'alice@example.net');
    assert.match(String(u.reply), /^550 5\.1\.1 /);
    assert.match(String(u.msg), /^NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.1\.1 .*; from=<alice@example\.net> to=<nobody@localhost> proto=ESMTP helo=<client\.example>$/);

    const r = await find('the relay-denied reject line', (l) => l.event === 'reject' && l.to === 'bob@elsewhere.test');
    assert.equal(r.reason, 'relay_denied');
    assert.equal(r.helo, 'client.example');
    assert.equal(r.from, 'alice@example.net');
    assert.match(String(r.reply), /^554 5\.7\.1 Relay access denied/);
    assert.match(String(r.msg), /from=<alice@example\.net> to=<bob@elsewhere\.test> proto=ESMTP helo=<client\.example>/);
  });

  test('grep QUEUEID: accepted (client, sender, Message-ID, size) → delivered → removed', async () => {
    const c = await RawSmtpClient.connect(h.port);
    let id: string;
    try {
      await c.read();
      await c.expect('EHLO story.example', 250);
      await c.expect('MAIL FROM:<carol@example.net>', 250);
      await c.expect('RCPT TO:<postmaster@localhost>', 250);
      await c.expect('DATA', 354);
      const done = await c.cmd('Message-ID: <story-1@example.net>\r\nSubject: a life\r\n\r\nhello\r\n.');
      assert.equal(done.code, 250);
      id = /queued as (\S+)/.exec(done.lines.join(' '))![1]!;
      await c.cmd('QUIT');
    } finally {
      c.close();
    }
    await find('the removed line', (l) => l.event === 'removed' && l.queue_id === id);
    // What `grep ID` prints, in order.
    const story = h.stdout().split('\n').filter((l) => l.includes(id)).map((l) => JSON.parse(l) as LogLine);
    const events = story.map((l) => (l.event === 'delivery' ? `delivery:${String(l.status)}` : String(l.event)));
    assert.deepEqual(events, ['accepted', 'delivery:sent', 'removed'], JSON.stringify(story));
    const accepted = story[0]!;
    assert.equal(accepted.message_id, '<story-1@example.net>');
    assert.equal(typeof accepted.size, 'number');
    assert.ok((accepted.size as number) > 60);
    assert.equal(accepted.from, 'carol@example.net');
    assert.equal(accepted.ip, '127.0.0.1');
    assert.equal(accepted.helo, 'story.example');
    assert.equal(story[1]!.to, 'postmaster@localhost');
  });

  test('admin API actions name the token and every queue id: inject, hold --domain, flush, delete', async () => {
    for (const to of ['x@dead.test', 'y@dead.test']) {
      const r = await api(h.httpPort!, 'POST', '/api/messages', { from: 'dave@example.net', to: [to], content: `Subject: to ${to}\n\nx\n` }, TOKEN);
      assert.equal(r.status, 201, r.text);
      injected.push((r.json as { id: string }).id);
    }
    const ids = [...injected].sort();
    for (const id of injected) {
      const l = await find(`the inject line of ${id}`, (x) => x.event === 'admin' && x.action === 'inject' && (x.queue_ids as string[]).includes(id));
      assert.equal(l.who, 'ops-alice');
    }

    const hold = await api(h.httpPort!, 'POST', '/api/queue/hold', { domain: 'dead.test' }, TOKEN);
    assert.equal(hold.status, 200, hold.text);
    const held = await find('the hold line', (l) => l.event === 'admin' && l.action === 'hold');
    assert.equal(held.who, 'ops-alice');
    assert.equal(held.via, 'api');
    assert.equal(held.domain, 'dead.test');
    assert.deepEqual(held.queue_ids, ids);

    const flush = await api(h.httpPort!, 'POST', '/api/queue/flush', {}, TOKEN);
    assert.equal(flush.status, 200, flush.text);
    const flushed = await find('the flush line', (l) => l.event === 'admin' && l.action === 'flush');
    assert.equal(flushed.who, 'ops-alice');
    assert.deepEqual(flushed.queue_ids, ids);

    // Without a token on loopback the API still works, and the line says so.
    const del = await api(h.httpPort!, 'DELETE', `/api/queue/${injected[0]}`);
    assert.equal(del.status, 200, del.text);
    const deleted = await find('the delete line', (l) => l.event === 'admin' && l.action === 'delete');
    assert.equal(deleted.who, 'anonymous');
    assert.deepEqual(deleted.queue_ids, [injected[0]]);
  });

  test('grep QUEUEID of a bounced message: accepted → inject → bounce (admin) → bounced → DSN with its own id → removed', async () => {
    const r = await api(h.httpPort!, 'POST', '/api/messages', { from: 'postmaster@localhost', to: ['z@dead.test'], content: 'Subject: doomed\n\nx\n' }, TOKEN);
    assert.equal(r.status, 201, r.text);
    const id = (r.json as { id: string }).id;
    const b = await api(h.httpPort!, 'POST', `/api/queue/${id}/bounce`, undefined, TOKEN);
    assert.equal(b.status, 200, b.text);
    await find('the removed line', (l) => l.event === 'removed' && l.queue_id === id);
    const story = h.stdout().split('\n').filter((l) => l.includes(id)).map((l) => JSON.parse(l) as LogLine);
    const events = story.map((l) => (l.event === 'delivery' ? `delivery:${String(l.status)}` : l.event === 'admin' ? `admin:${String(l.action)}` : String(l.event)));
    // The deferral by the dead port may or may not come before the bounce: the rest is in this order.
    assert.deepEqual(events.filter((e) => e !== 'delivery:deferred'), ['accepted', 'admin:inject', 'admin:bounce', 'delivery:bounced', 'dsn', 'removed'], JSON.stringify(story));
    const bounce = story.find((l) => l.action === 'bounce')!;
    assert.equal(bounce.who, 'ops-alice');
    const dsn = story.find((l) => l.event === 'dsn')!;
    assert.match(String(dsn.dsn_id), /^\S+$/);
    assert.notEqual(dsn.dsn_id, id);
    assert.match(String(dsn.msg), new RegExp(`${String(dsn.dsn_id)}$`), 'the DSN id is in the message too');
  });

  test('with the server stopped: the stop is logged, a CLI delete goes to DATA_DIR/admin.log with the Unix user and the ids', async () => {
    assert.equal(injected.length, 2, 'runs after the admin API test');
    await h.kill('SIGTERM');
    assert.ok(logLines(h).some((l) => l.event === 'stopped'), 'the stop is logged');
    const adminLog = join(h.dataDir, 'admin.log');
    const list = await runCli(['queue', 'list', '--config', h.configFile]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(existsSync(adminLog), false, 'a read-only command writes no log');

    const r = await runCli(['queue', 'delete', injected[1]!, '-y', '--config', h.configFile]);
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(adminLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as LogLine);
    assert.equal(lines.length, 1, readFileSync(adminLog, 'utf8'));
    assert.equal(lines[0]!.event, 'admin');
    assert.equal(lines[0]!.action, 'delete');
    assert.equal(lines[0]!.via, 'cli');
    assert.equal(lines[0]!.who, userInfo().username);
    assert.deepEqual(lines[0]!.queue_ids, [injected[1]]);
  });
});

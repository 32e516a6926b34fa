/**
 * The suppression list end to end, with the compiled server (`serve`), a
 * scripted remote over real sockets (test/support/remote-smtp) that counts
 * every RCPT it sees, and the CLI and admin API an operator uses:
 *
 * - message 1 hard-bounces gone@ (550 5.1.1) and gets a 5.7.1 reputation
 *   block, a 552 5.2.2 full mailbox and a 4xx for three others: only gone@
 *   is suppressed, with why (class, reply, message) and when;
 * - message 2 from a relay client: RCPT gone@ is refused with
 *   `550 5.1.1 <gone@…>: recipient suppressed since …: <original reply>`,
 *   the other three are taken and the remote sees their RCPTs again; the
 *   remote saw exactly one RCPT for gone@ over both messages;
 * - message 3, queued by `halcyon sendmail` while the server is stopped, to
 *   gone@ and to an address an operator suppressed with the CLI: both fail
 *   without a connection, in one DSN, with `suppressed` events;
 * - the CLI (list, add, remove, export, import) and the admin API.
 */
import http from 'node:http';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rcptsFor, startRemote } from '../support/remote-smtp.js';
import { runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { RawSmtpClient } from '../support/smtp-client.js';
import { halcyonMaildir, message, parseDsn, submit } from '../support/postfix.js';
import { api, logLines, parseProm, until } from '../ops/helpers.js';

const SENDER = 'sender@local.test';
const REPLIES: Record<string, string> = {
  gone: '550 5.1.1 <gone@remote.test>: Recipient address rejected: User unknown in virtual mailbox table',
  rep: '550 5.7.1 Service unavailable; client [127.0.0.1] blocked: low reputation of the sending IP',
  full: '552 5.2.2 <full@remote.test>: Mailbox full',
  temp: '451 4.3.0 <temp@remote.test>: Temporary lookup failure',
};


test('suppression list: a hard bounce suppresses, the next RCPT is refused, queued mail fails without a connection; nothing else suppresses', { timeout: 180_000 }, async () => {
  const remote = await startRemote({
    extensions: { pipelining: true, enhancedStatusCodes: true },
    rcpt: (rcpt) => REPLIES[rcpt.slice(0, rcpt.indexOf('@'))],
  });
  const events: Record<string, unknown>[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => {
      events.push(...(JSON.parse(body) as Record<string, unknown>[]));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const toml = [
    'postmaster = "postmaster@local.test"', 'log_level = "info"',
    '[[domains]]', 'name = "local.test"', 'mailboxes = [{ user = "sender" }, { user = "postmaster" }]',
    '[routes]', `"remote.test" = "127.0.0.1:${remote.port}"`,
    '[delivery]', 'tls = "none"', 'queue_scan_interval = "200ms"',
    '[[events.webhooks]]', 'name = "app"', `url = "http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook"`, 'secret = "s"',
  ].join('\n');
  let h: SpawnedHalcyon = await spawnHalcyon(toml, { http: true, captureStdout: true, readyTimeoutMs: 60_000 });
  const cli = (...args: string[]) => runCli([...args, '--config', h.configFile]);
  try {
    // ---- message 1: one hard bounce, three failures that must not suppress, one delivery ----
    const first = ['gone@remote.test', 'rep@remote.test', 'full@remote.test', 'temp@remote.test', 'ok@remote.test'];
    const m1 = await submit(h.port, { from: SENDER, to: first, content: message(SENDER, first, 'suppression one') });
    await until('message 1 decided', () => logLines(h).filter((l) => l['event'] === 'delivery' && l['queue_id'] === m1).length >= 5 || undefined, 600);
    const listed = JSON.parse((await cli('suppression', 'list', '--json')).stdout) as { address: string; class: string; source: string; queueId?: string; since: number; until: number; reply: { text: string; code: number } }[];
    assert.deepEqual(listed.map((e) => [e.address, e.class, e.source, e.queueId]), [['gone@remote.test', 'InvalidRecipient', 'bounce', m1]],
      'only the 5.1.1 suppresses: not the 5.7.1 reputation block, the 5.2.2 full mailbox nor the 4xx');
    assert.equal(listed[0]!.reply.code, 550);
    assert.match(listed[0]!.reply.text, /User unknown in virtual mailbox table/);
    assert.equal(listed[0]!.until - listed[0]!.since, 30 * 86_400_000, 'suppression.ttl defaults to 30 days');
    const text = (await cli('suppression', 'list')).stdout;
    assert.match(text, /^gone@remote\.test {2}InvalidRecipient {2}since \S+Z {2}until \S+Z {2}bounce \w+\n {4}550 5\.1\.1 <gone@remote\.test>: Recipient address rejected/m);

    // ---- message 2 from a relay client: refused at RCPT, only for gone@ ----
    const c = await RawSmtpClient.connect(h.port);
    await c.read();
    await c.expect('EHLO client.test', 250);
    await c.expect(`MAIL FROM:<${SENDER}>`, 250);
    const refused = await c.cmd('RCPT TO:<gone@remote.test>');
    assert.equal(refused.code, 550);
    assert.equal(refused.enhanced, '5.1.1');
    assert.match(refused.lines.join(' '), /^<gone@remote\.test>: recipient suppressed since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: 550 5\.1\.1 <gone@remote\.test>: Recipient address rejected: User unknown in virtual mailbox table$/);
    for (const r of ['rep', 'full', 'temp', 'ok2']) await c.expect(`RCPT TO:<${r}@remote.test>`, 250);
    await c.expect('DATA', 354);
    c.write(message(SENDER, ['rep@remote.test'], 'suppression two'));
    const done = await c.cmd('.');
    assert.equal(done.code, 250);
    await c.cmd('QUIT').catch(() => undefined);
    c.close();
    await remote.waitFor(() => rcptsFor(remote, 'ok2@remote.test') === 1 && rcptsFor(remote, 'full@remote.test') >= 2, 30_000);
    const rcptGone = rcptsFor(remote, 'gone@remote.test');
    assert.equal(rcptGone, 1, 'the remote saw one RCPT for gone@ over both messages');
    for (const r of ['rep', 'full', 'temp']) assert.ok(rcptsFor(remote, `${r}@remote.test`) >= 2, `${r}@ was tried again`);
    assert.ok(logLines(h).some((l) => l['event'] === 'reject' && l['reason'] === 'suppressed' && l['to'] === 'gone@remote.test'), 'a reject line');

    // ---- the CLI and the API ----
    assert.equal((await cli('suppression', 'add', 'Added@Remote.test', '--reason', 'asked to stop', '--class', 'InactiveMailbox')).code, 0);
    const viaApi = (await api(h.httpPort!, 'GET', '/api/suppressions?q=remote.test')).json as { address: string; class: string; reply: { text: string } }[];
    assert.deepEqual(viaApi.map((e) => [e.address, e.class]), [['Added@Remote.test', 'InactiveMailbox'], ['gone@remote.test', 'InvalidRecipient']]);
    assert.equal(viaApi[0]!.reply.text, 'asked to stop');
    assert.equal((await api(h.httpPort!, 'POST', '/api/suppressions', { address: 'api@remote.test', ttl: '2d' })).status, 200);
    assert.equal((await api(h.httpPort!, 'POST', '/api/suppressions', { address: 'not an address' })).status, 400);
    assert.equal((await api(h.httpPort!, 'DELETE', `/api/suppressions/${encodeURIComponent('API@remote.test')}`)).status, 200);
    assert.equal((await api(h.httpPort!, 'DELETE', '/api/suppressions/api@remote.test')).status, 404);
    const csv = (await cli('suppression', 'export')).stdout;
    assert.match(csv, /^address,class,since,until,source,queue_id,reply\r\nAdded@Remote\.test,InactiveMailbox,/);
    assert.equal((csv.match(/\r\n/g) ?? []).length, 3, 'a header and two entries');
    const importFile = join(h.dataDir, 'import.csv');
    writeFileSync(importFile, 'address,class\nimported@remote.test,BadDomain\n');
    assert.match((await cli('suppression', 'import', importFile)).stdout, /imported 1 address/);
    writeFileSync(importFile, 'address,class\nbad line,BadDomain\n');
    const badImport = await cli('suppression', 'import', importFile);
    assert.equal(badImport.code, 2);
    assert.match(badImport.stderr, /line 2: "bad line" is not an address/);
    assert.equal((await cli('suppression', 'remove', 'imported@remote.test')).code, 0);
    assert.equal((await cli('suppression', 'remove', 'imported@remote.test')).code, 3);
    assert.ok(logLines(h).some((l) => l['event'] === 'admin' && l['action'] === 'suppress'), 'the operator\'s action is logged');

    // ---- message 3, queued while the server is stopped: fails without a connection, one DSN ----
    const port = h.port;
    await h.kill('SIGTERM');
    const connectionsBefore = remote.connections.length;
    const queued = await runCli(['sendmail', '-C', h.configFile, '-f', SENDER, 'gone@remote.test', 'added@remote.test'], { input: 'Subject: suppression three\n\nqueued while stopped\n' });
    assert.equal(queued.code, 0, queued.stderr);
    h = await spawnHalcyon(toml, { http: true, captureStdout: true, dataDir: h.dataDir, port, readyTimeoutMs: 60_000 });
    const lines = await until('message 3 suppressed', () => {
      const l = logLines(h).filter((x) => x['event'] === 'delivery' && x['status'] === 'suppressed');
      return l.length >= 2 ? l : undefined;
    }, 600);
    const m3 = String(lines[0]!['queue_id']);
    assert.deepEqual(lines.map((l) => [l['to'], l['class']]).sort(), [['added@remote.test', 'InactiveMailbox'], ['gone@remote.test', 'InvalidRecipient']]);
    const report = await until('one DSN for message 3', () => halcyonMaildir(h.dataDir, 'local.test', 'sender')
      .map((f) => parseDsn(f.content)).find((d) => d.perMessage.get('x-halcyon-queue-id') === m3), 600);
    assert.deepEqual(report.perRecipient.map((r) => [r.get('final-recipient'), r.get('status'), r.get('x-halcyon-bounce-class')]).sort(),
      [['rfc822; added@remote.test', '5.1.1', 'InactiveMailbox'], ['rfc822; gone@remote.test', '5.1.1', 'InvalidRecipient']]);
    assert.match(report.perRecipient.find((r) => r.get('final-recipient') === 'rfc822; gone@remote.test')!.get('diagnostic-code') ?? '',
      /^smtp; 550 5\.1\.1 <gone@remote\.test>: recipient suppressed since \S+Z: 550 5\.1\.1 <gone@remote\.test>: Recipient address rejected/);
    assert.equal(halcyonMaildir(h.dataDir, 'local.test', 'sender').map((f) => parseDsn(f.content)).filter((d) => d.perMessage.get('x-halcyon-queue-id') === m3).length, 1);
    assert.equal(remote.connections.length, connectionsBefore, 'no connection was made for message 3');
    assert.equal(rcptsFor(remote, 'gone@remote.test'), 1);
    await until('suppressed events', () => events.filter((e) => e['type'] === 'suppressed' && e['queue_id'] === m3).length >= 2 || undefined, 600);
    const sEvents = events.filter((e) => e['type'] === 'suppressed' && e['queue_id'] === m3);
    assert.deepEqual(sEvents.map((e) => e['class']).sort(), ['InactiveMailbox', 'InvalidRecipient']);
    assert.ok(!events.some((e) => e['type'] === 'bounced' && e['queue_id'] === m3), 'a suppression is not reported as a bounce');
    const prom = parseProm((await api(h.httpPort!, 'GET', '/metrics')).text);
    assert.equal(prom('halcyon_recipients_total', { status: 'suppressed' }), 2);
    process.stdout.write(`# suppression e2e: RCPTs for gone@ at the remote: ${rcptGone}; message 3: ${remote.connections.length - connectionsBefore} connections, ${report.perRecipient.length} recipients in 1 DSN; entries listed ${listed.length}\n`);
  } finally {
    await h.kill('SIGTERM');
    rmSync(h.dataDir, { recursive: true, force: true });
    await remote.close();
    await new Promise<void>((r) => receiver.close(() => r()));
  }
});

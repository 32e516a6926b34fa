/**
 * Bounce classes end to end: the compiled server (`serve`) relays to a
 * scripted remote over real sockets that answers each recipient by its local
 * part — unknown* 550 5.1.1, full* 552 5.2.2, grey* 450 4.7.1 greylisting,
 * anything else 250 — and every place an operator or an application looks
 * must show the same class for each recipient: the delivery log line,
 * `queue show --json`, the admin API, /metrics (by class and destination),
 * the DSN (X-Halcyon-Bounce-Class and the human part), the webhook events,
 * and the dashboard's "recent failures by class" endpoint.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startRemote } from '../support/remote-smtp.js';
import { CLI, spawnHalcyon } from '../support/halcyon.js';
import { halcyonMaildir, message, parseDsn, submit } from '../support/postfix.js';
import { api, logLines, parseProm, until } from '../ops/helpers.js';

const SENDER = 'sender@local.test';

function cli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message} ${stderr}`)) : resolve(stdout)));
  });
}

test('every outcome carries its class: log, queue show, API, metrics, DSN, events, recent failures', { timeout: 90_000 }, async () => {
  const remote = await startRemote({
    extensions: { pipelining: true, enhancedStatusCodes: true },
    rcpt: (rcpt) => {
      if (rcpt.startsWith('unknown')) return `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table`;
      if (rcpt.startsWith('full')) return `552 5.2.2 <${rcpt}>: Mailbox full`;
      if (rcpt.startsWith('grey')) return '450 4.7.1 Greylisted, please try again in 300 seconds';
      return undefined;
    },
  });
  const events: Record<string, unknown>[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => { body += d; });
    req.on('end', () => {
      events.push(...(JSON.parse(body) as Record<string, unknown>[]));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hookPort = (receiver.address() as { port: number }).port;
  const h = await spawnHalcyon([
    'postmaster = "postmaster@local.test"', 'log_level = "info"',
    '[[domains]]', 'name = "local.test"', 'mailboxes = [{ user = "sender" }, { user = "postmaster" }]',
    '[routes]', `"remote.test" = "127.0.0.1:${remote.port}"`,
    '[delivery]', 'tls = "none"', 'queue_scan_interval = "200ms"',
    '[[events.webhooks]]', 'name = "app"', `url = "http://127.0.0.1:${hookPort}/hook"`, 'secret = "s3cret"', 'batch = 50',
  ].join('\n'), { http: true, captureStdout: true });
  try {
    const rcpts = ['unknown1@remote.test', 'full1@remote.test', 'grey1@remote.test', 'ok1@remote.test'];
    const id = await submit(h.port, { from: SENDER, to: rcpts, content: message(SENDER, rcpts, 'bounce classes') });
    const want: Record<string, [string, string]> = {
      'unknown1@remote.test': ['bounced', 'InvalidRecipient'],
      'full1@remote.test': ['bounced', 'QuotaIssues'],
      'grey1@remote.test': ['deferred', 'TransientFailure'],
      'ok1@remote.test': ['sent', 'Delivered'],
    };

    // The log: one delivery line per recipient, each with its class.
    const lines = await until('four delivery lines', () => {
      const l = logLines(h).filter((x) => x['event'] === 'delivery' && x['queue_id'] === id);
      return l.length >= 4 ? l : undefined;
    }, 400);
    for (const [to, [status, cls]] of Object.entries(want)) {
      const line = lines.find((l) => l['to'] === to);
      assert.equal(line?.['status'], status, to);
      assert.equal(line?.['class'], cls, `${to}: ${JSON.stringify(line)}`);
    }

    // queue show --json (the CLI, through the running server's API) and the admin API itself.
    const shown = JSON.parse(await cli(['queue', 'show', id, '--json', '--config', h.configFile])) as { recipients: { address: string; state: string; lastReply?: { class?: string } }[] };
    const viaApi = (await api(h.httpPort!, 'GET', `/api/queue/${id}`)).json as typeof shown;
    for (const view of [shown, viaApi]) {
      for (const [to, [, cls]] of Object.entries(want)) {
        const r = view.recipients.find((x) => x.address === to);
        assert.equal(r?.lastReply?.class, cls, `${to} in ${JSON.stringify(r)}`);
      }
    }
    const text = await cli(['queue', 'show', id, '--config', h.configFile]);
    assert.match(text, /550 5\.1\.1 <unknown1@remote\.test>: Recipient address rejected: User unknown in virtual mailbox table \(in reply to RCPT TO\) \[InvalidRecipient\]/);

    // Prometheus: by status, class and destination.
    const dest = (shown.recipients as unknown as { address: string; destination: string }[]).find((r) => r.address === 'unknown1@remote.test')!.destination;
    const prom = parseProm((await api(h.httpPort!, 'GET', '/metrics')).text);
    assert.equal(prom('halcyon_recipient_classes_total', { status: 'bounced', class: 'InvalidRecipient', destination: dest }), 1);
    assert.equal(prom('halcyon_recipient_classes_total', { status: 'bounced', class: 'QuotaIssues', destination: dest }), 1);
    assert.equal(prom('halcyon_recipient_classes_total', { status: 'sent', class: 'Delivered', destination: dest }), 1);
    assert.ok((prom('halcyon_recipient_classes_total', { status: 'deferred', class: 'TransientFailure', destination: dest }) ?? 0) >= 1);

    // The DSN the sender gets: both failures in one report, each with its class.
    const report = await until('the DSN in the sender mailbox', () => halcyonMaildir(h.dataDir, 'local.test', 'sender')
      .map((f) => parseDsn(f.content)).find((d) => d.perMessage.get('x-halcyon-queue-id') === id), 400);
    const classes = new Map(report.perRecipient.map((r) => [r.get('final-recipient'), r.get('x-halcyon-bounce-class')]));
    assert.equal(classes.get('rfc822; unknown1@remote.test'), 'InvalidRecipient');
    assert.equal(classes.get('rfc822; full1@remote.test'), 'QuotaIssues');
    const human = report.parts[0]!.body.replace(/\r?\n\s*/g, ' ');
    assert.match(human, /User unknown in virtual mailbox table \(in reply to RCPT TO\) \[InvalidRecipient\]/);

    // The events: bounced, deferred and delivered each say the class.
    await until('four outcome events', () => events.filter((e) => e['queue_id'] === id && e['type'] !== 'received').length >= 4 || undefined, 400);
    for (const [to, [status, cls]] of Object.entries(want)) {
      const type = status === 'sent' ? 'delivered' : status;
      const e = events.find((x) => x['queue_id'] === id && x['recipient'] === to && x['type'] === type);
      assert.equal(e?.['class'], cls, `${to}: ${JSON.stringify(e)}`);
    }

    // The dashboard's view: failures of the last hour by class, and the latest ones.
    const recent = (await api(h.httpPort!, 'GET', '/api/stats/failures')).json as { classes: { class: string; bounced: number; deferred: number }[]; latest: { recipient: string; class: string }[] };
    assert.equal(recent.classes.find((c) => c.class === 'InvalidRecipient')?.bounced, 1);
    assert.equal(recent.classes.find((c) => c.class === 'QuotaIssues')?.bounced, 1);
    assert.ok((recent.classes.find((c) => c.class === 'TransientFailure')?.deferred ?? 0) >= 1);
    assert.equal(recent.classes.some((c) => c.class === 'Delivered'), false, 'a delivery is no failure');
    assert.equal(recent.latest.find((e) => e.recipient === 'unknown1@remote.test')?.class, 'InvalidRecipient');
    process.stdout.write(`# bounce classes e2e: ${lines.length} delivery lines, ${events.length} events, ${report.perRecipient.length} DSN recipients, classes ${recent.classes.map((c) => c.class).join(',')}\n`);
  } finally {
    await h.kill('SIGTERM');
    rmSync(h.dataDir, { recursive: true, force: true });
    await remote.close();
    await new Promise<void>((r) => receiver.close(() => r()));
  }
});

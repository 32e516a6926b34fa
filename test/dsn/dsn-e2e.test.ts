/**
 * End to end: the delivery status notifications a sender actually receives.
 * A real Halcyon (startApp, scheduler running) relays remote.test to a
 * scripted remote (test/support/remote-smtp); the sender is the local
 * mailbox sender@local.test, so every DSN lands in a Maildir and is read
 * back from there — with mailparser for the envelope of the report and a
 * strict MIME split (parseDsn) for the delivery-status fields.
 *
 * Covers: a 550 → one RFC 3464 report, field by field; RET=HDRS; NOTIFY=NEVER
 * (nothing); NOTIFY=SUCCESS (Action: relayed); three failures in one attempt
 * → one report; null-sender mail never bounced (a failed DSN goes to the
 * postmaster once, a plain <> message to no one); a remote reply carrying
 * CR/LF, header lines and a fake boundary cannot inject into the report.
 *
 * Remote behaviour is chosen by local part: bad* → 550 5.1.1, inject* → a
 * hostile multi-line 550, bounce* → 550 (used as a remote sender whose DSN
 * fails too), anything else → 250.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { startTestApp, type TestApp } from '../support/halcyon.js';
import { submit, message, waitUntil, halcyonMaildir, parseDsn, holdRemoval, type ParsedDsn } from '../support/postfix.js';

const SENDER = 'sender@local.test';
/** Every line a well-formed 550 line; the text tries headers, a blank line, a fake boundary and part headers. */
const INJECTED = [
  '550-5.1.1 first line',
  '550-X-Injected: yes',
  '550-',
  '550---=_halcyon_fake',
  '550-Content-Type: text/html',
  '550-',
  '550 5.1.1 X-Injected: yes',
].join('\r\n');

describe('DSNs end to end', { timeout: 60_000 }, () => {
  let remote: Remote;
  let h: TestApp;
  let hold: { release(): void };

  before(async () => {
    remote = await startRemote({
      extensions: { pipelining: true, enhancedStatusCodes: true },
      rcpt: (rcpt) => {
        if (/^bad|^bounce/.test(rcpt)) return `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown`;
        if (/^inject/.test(rcpt)) return INJECTED;
        return undefined;
      },
    });
    h = await startTestApp({
      postmaster: 'postmaster@local.test',
      domains: [{ name: 'local.test', mailboxes: [{ user: 'sender' }, { user: 'postmaster' }] }],
      routes: { 'remote.test': `127.0.0.1:${remote.port}` },
      // A short scan keeps each report a fraction of a second away (sweeps run once per pass).
      delivery: { tls: 'none', queue_scan_interval: '200ms' },
    }, { scheduler: true });
    hold = holdRemoval(h.app.store.recipients);
  });
  after(async () => {
    hold.release();
    await h?.stop();
    await remote?.close();
  });

  const HOST = () => `127.0.0.1[127.0.0.1]:${remote.port}`;

  /** Reports about message `id` in a local mailbox, raw and parsed. */
  function reportsAbout(id: string, user = 'sender'): { raw: Buffer; dsn: ParsedDsn }[] {
    return halcyonMaildir(h.dataDir, 'local.test', user)
      .map((f) => ({ raw: f.content, dsn: parseDsn(f.content) }))
      .filter((r) => r.dsn.perMessage.get('x-halcyon-queue-id') === id);
  }

  /** Waits until every recipient of `id` has its report question settled (DSN enqueued or decided against). */
  async function settled(id: string): Promise<void> {
    await waitUntil(async () => {
      const rows = await h.app.store.recipients.getRecipients(id);
      return rows.length > 0 && rows.every((r) => r.dsnDone || (r.state === 'delivered' && !(Array.isArray(r.notify) && r.notify.includes('SUCCESS'))));
    }, `reports of ${id} settled`);
  }

  async function dsnMessagesFor(id: string): Promise<number> {
    return (await h.app.store.recipients.listMessages({})).filter((m) => m.message.dsnFor === id).length;
  }

  test('a 550 → one DSN to the sender, RFC 3464 field by field', async () => {
    const subject = 'dsn basic';
    const id = await submit(h.port, { from: SENDER, to: ['bad1@remote.test', 'ok1@remote.test'], content: message(SENDER, ['bad1@remote.test', 'ok1@remote.test'], subject, 'The body line.') });
    await waitUntil(() => reportsAbout(id).length >= 1, 'the DSN in the sender mailbox');
    await settled(id);
    const reports = reportsAbout(id);
    assert.equal(reports.length, 1);
    const { raw, dsn } = reports[0]!;

    const mail = await simpleParser(raw);
    assert.match(raw.toString('utf8'), /^Return-Path: <>\r$/m, 'sent from the null sender');
    assert.match(mail.from?.text ?? '', /MAILER-DAEMON@mx\.halcyon\.test/i);
    assert.equal(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined, SENDER);
    assert.equal(mail.headers.get('auto-submitted')?.toString(), 'auto-replied');
    const ct = mail.headers.get('content-type') as { value: string; params: Record<string, string> };
    assert.equal(ct.value, 'multipart/report');
    assert.equal(ct.params['report-type'], 'delivery-status');

    assert.deepEqual(dsn.parts.map((p) => p.type), ['text/plain', 'message/delivery-status', 'message/rfc822']);
    const human = dsn.parts[0]!.body.replace(/\r?\n\s*/g, ' ');
    assert.ok(human.includes(HOST()), `the human part names the host: ${human}`);
    assert.ok(human.includes('550 5.1.1 <bad1@remote.test>: Recipient address rejected: User unknown'), `and the reply: ${human}`);
    assert.ok(!human.includes('ok1@remote.test'), 'the delivered recipient is not reported');

    assert.equal(dsn.perMessage.get('reporting-mta'), 'dns; mx.halcyon.test');
    assert.ok(dsn.perMessage.get('arrival-date'), 'Arrival-Date');
    assert.equal(dsn.perRecipient.length, 1);
    const r = dsn.perRecipient[0]!;
    assert.equal(r.get('final-recipient'), 'rfc822; bad1@remote.test');
    assert.equal(r.get('action'), 'failed');
    assert.equal(r.get('status'), '5.1.1');
    assert.equal(r.get('remote-mta'), 'dns; 127.0.0.1');
    assert.equal(r.get('diagnostic-code'), 'smtp; 550 5.1.1 <bad1@remote.test>: Recipient address rejected: User unknown');

    const returned = mail.attachments.find((a) => a.contentType === 'message/rfc822');
    assert.ok(returned, 'the original is returned');
    const original = returned.content.toString('utf8');
    assert.match(original, /^Subject: dsn basic$/m);
    assert.match(original, /The body line\./);
    assert.equal((await h.app.store.recipients.getRecipients(id)).find((x) => x.address === 'ok1@remote.test')?.state, 'delivered');
  });

  test('RET=HDRS → only the headers are returned', async () => {
    const id = await submit(h.port, { from: SENDER, mailParams: 'RET=HDRS', to: ['bad2@remote.test'], content: message(SENDER, ['bad2@remote.test'], 'dsn hdrs', 'SECRET BODY LINE') });
    await waitUntil(() => reportsAbout(id).length >= 1, 'the DSN');
    const { raw, dsn } = reportsAbout(id)[0]!;
    assert.deepEqual(dsn.parts.map((p) => p.type), ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.match(dsn.parts[2]!.body, /^Subject: dsn hdrs$/m);
    assert.ok(!raw.toString('utf8').includes('SECRET BODY LINE'), 'no body anywhere in the report');
  });

  test('NOTIFY=NEVER → no DSN at all', async () => {
    const id = await submit(h.port, { from: SENDER, rcptParams: 'NOTIFY=NEVER', to: ['bad3@remote.test'], content: message(SENDER, ['bad3@remote.test'], 'dsn never') });
    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id))[0]?.state === 'failed', 'failed');
    await settled(id);
    assert.equal(await dsnMessagesFor(id), 0);
    assert.equal(reportsAbout(id).length, 0);
  });

  test('NOTIFY=SUCCESS → a success DSN with Action: relayed', async () => {
    const id = await submit(h.port, { from: SENDER, rcptParams: 'NOTIFY=SUCCESS', to: ['ok4@remote.test'], content: message(SENDER, ['ok4@remote.test'], 'dsn success') });
    await waitUntil(() => reportsAbout(id).length >= 1, 'the success DSN');
    await settled(id);
    const reports = reportsAbout(id);
    assert.equal(reports.length, 1);
    const r = reports[0]!.dsn.perRecipient;
    assert.equal(r.length, 1);
    assert.equal(r[0]!.get('final-recipient'), 'rfc822; ok4@remote.test');
    assert.equal(r[0]!.get('action'), 'relayed');
    assert.match(r[0]!.get('status') ?? '', /^2\.\d+\.\d+$/);
  });

  test('three recipients failing in the same attempt → ONE DSN naming all three', async () => {
    const to = ['bad5a@remote.test', 'bad5b@remote.test', 'ok5@remote.test', 'bad5c@remote.test'];
    const id = await submit(h.port, { from: SENDER, to, content: message(SENDER, to, 'dsn three') });
    await waitUntil(() => reportsAbout(id).length >= 1, 'the DSN');
    await settled(id);
    const reports = reportsAbout(id);
    assert.equal(reports.length, 1, 'one report');
    assert.deepEqual(reports[0]!.dsn.perRecipient.map((g) => g.get('final-recipient')).sort(),
      ['rfc822; bad5a@remote.test', 'rfc822; bad5b@remote.test', 'rfc822; bad5c@remote.test']);
    assert.equal(await dsnMessagesFor(id), 1);
  });

  test('a plain message from <> that fails is bounced to no one', async () => {
    const id = await submit(h.port, { from: '', to: ['bad6@remote.test'], content: message('mailer@client.test', ['bad6@remote.test'], 'dsn null sender') });
    await waitUntil(async () => (await h.app.store.recipients.getRecipients(id))[0]?.state === 'failed', 'failed');
    await settled(id);
    assert.equal(await dsnMessagesFor(id), 0);
    assert.equal(reportsAbout(id, 'postmaster').length, 0);
    assert.equal(reportsAbout(id).length, 0);
  });

  test('a DSN that fails goes to the postmaster once, and never further', async () => {
    // A remote sender whose own address the remote rejects: its DSN fails in turn.
    const from = 'bounce7@remote.test';
    const id = await submit(h.port, { from, to: ['bad7@remote.test'], content: message(from, ['bad7@remote.test'], 'dsn double bounce') });
    await waitUntil(async () => (await h.app.store.recipients.listMessages({})).some((m) => m.message.dsnFor === id), 'the first DSN queued');
    const first = (await h.app.store.recipients.listMessages({})).find((m) => m.message.dsnFor === id)!;
    assert.equal(first.message.sender, '');
    assert.deepEqual(first.recipients.map((r) => r.address), [from]);
    await waitUntil(() => reportsAbout(first.message.id, 'postmaster').length >= 1, 'the postmaster report about the failed DSN', 5_000);
    await settled(first.message.id);
    assert.equal(reportsAbout(first.message.id, 'postmaster').length, 1);
    assert.equal(await dsnMessagesFor(first.message.id), 1, 'one report about the failed DSN');
    assert.equal(remote.commands.filter((c) => /^RCPT TO:<bounce7@remote\.test>/i.test(c.line)).length, 1, 'the failed DSN was tried once');
    // The postmaster's report, delivered locally, settles with nothing further owed.
    const pmReport = (await h.app.store.recipients.listMessages({})).find((m) => m.message.dsnFor === first.message.id)!;
    await settled(pmReport.message.id);
    assert.equal(await dsnMessagesFor(pmReport.message.id), 0);
  });

  test('a hostile multi-line remote reply cannot inject headers or parts into the DSN', async () => {
    const id = await submit(h.port, { from: SENDER, to: ['inject8@remote.test'], content: message(SENDER, ['inject8@remote.test'], 'dsn inject') });
    await waitUntil(() => reportsAbout(id).length >= 1, 'the DSN');
    const { raw, dsn } = reportsAbout(id)[0]!;
    const text = raw.toString('utf8');
    assert.doesNotMatch(text, /^X-Injected:/m, 'no line of the report starts with the injected header');
    assert.doesNotMatch(text, /^--=_halcyon_fake/m, 'the fake boundary never starts a line');
    assert.doesNotMatch(text, /\r(?!\n)/, 'no bare CR anywhere');
    const mail = await simpleParser(raw);
    assert.equal(mail.headers.get('x-injected'), undefined);
    assert.deepEqual(dsn.parts.map((p) => p.type), ['text/plain', 'message/delivery-status', 'message/rfc822']);
    assert.equal(dsn.perRecipient.length, 1);
    for (const g of [dsn.perMessage, ...dsn.perRecipient]) {
      assert.equal(g.get('x-injected'), undefined);
      assert.equal(g.get('content-type'), undefined);
    }
    assert.match(dsn.perRecipient[0]!.get('diagnostic-code') ?? '', /^smtp; 550 5\.1\.1 first line/);
    for (const p of dsn.parts) assert.equal(p.headers.get('x-injected'), undefined);
  });
});

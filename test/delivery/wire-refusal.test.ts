/**
 * The outbound client never writes a MAIL FROM or RCPT TO line that does not
 * parse back to the stored envelope (delivery/wire-check): an address stored
 * without its quotes (as admin injection once did) fails permanently with a
 * clear reason, the other recipients are delivered, and the remote sees no
 * smuggled parameter. Real sockets, the scriptable remote.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { createResolver } from '../../src/delivery/resolve.js';
import { destinationKey } from '../../src/delivery/route.js';
import { SmtpTransport, type RecipientVerdict } from '../../src/delivery/smtp-transport.js';
import type { MessageRow, RecipientRow } from '../../src/queue/model.js';
import { startRemote } from '../support/remote-smtp.js';

const dir = mkdtempSync(join(tmpdir(), 'halcyon-wire-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const BODY = Buffer.from('Subject: x\r\n\r\nx\r\n');

const msg = (sender: string): MessageRow => ({
  id: 'W1', sender, params: { smtputf8: false, ret: 'HDRS' }, receivedAt: 0, size: BODY.length,
  trace: { clientIp: '127.0.0.1', clientHelo: 'c.test', protocol: 'ESMTP' }, held: false,
});
const rcpt = (id: number, address: string): RecipientRow => ({
  id, messageId: 'W1', address, destination: 'example.test', state: 'inflight', attempts: 0, nextAttemptAt: 0,
  delayNotified: false, dsnDone: false, updatedAt: 0,
});

async function deliver(sender: string, rcpts: RecipientRow[]) {
  const remote = await startRemote({ extensions: { pipelining: true, size: 10_000_000, dsn: true, enhancedStatusCodes: true } });
  const config = parseConfig({ hostname: 'halcyon.test', data_dir: dir, routes: { 'example.test': `127.0.0.1:${remote.port}` } });
  const transport = new SmtpTransport({ config: () => config, resolver: createResolver({ servers: [], timeoutMs: 2000 }), log: pino({ level: 'silent' }) });
  const verdicts = new Map<number, RecipientVerdict>();
  try {
    const result = await transport.deliver(
      { destination: destinationKey('example.test', config.routes), domain: 'example.test', message: msg(sender), body: BODY, recipients: rcpts },
      async (v) => { for (const [id, x] of v) verdicts.set(id, x); },
    );
    return { result, verdicts, lines: remote.commands.map((c) => c.line), transactions: remote.transactions };
  } finally {
    await transport.close();
    await remote.close();
  }
}

test('a stored sender whose MAIL FROM would smuggle parameters: every recipient fails 553 5.1.7, nothing is sent', async () => {
  const { result, verdicts, lines } = await deliver('evil@attacker.test> RET=FULL ENVID=x@src.test', [rcpt(1, 'a@example.test'), rcpt(2, 'b@example.test')]);
  assert.equal(result.destinationFailure, undefined, 'not the destination\'s fault: no backoff');
  for (const id of [1, 2]) {
    const v = verdicts.get(id)!;
    assert.equal(v.kind, 'failed');
    assert.equal(v.reply.code, 553);
    assert.equal(v.reply.enhanced, '5.1.7');
    assert.match(v.reply.text, /sender address would not survive/);
  }
  assert.ok(!lines.some((l) => /^MAIL/i.test(l)), `no MAIL FROM written: ${lines.join(' | ')}`);
  assert.ok(!lines.some((l) => /RET=FULL/.test(l)));
});

test('one recipient whose RCPT TO would not parse back fails 553 5.1.3; the others are delivered', async () => {
  const { verdicts, lines, transactions } = await deliver('s@src.test', [rcpt(1, 'victim@elsewhere.test>@example.test'), rcpt(2, 'ok@example.test')]);
  const bad = verdicts.get(1)!;
  assert.equal(bad.kind, 'failed');
  assert.equal(bad.reply.enhanced, '5.1.3');
  assert.match(bad.reply.text, /RCPT TO/);
  assert.equal(verdicts.get(2)!.kind, 'delivered');
  assert.deepEqual(transactions.map((t) => t.rcpts), [['ok@example.test']]);
  assert.ok(!lines.some((l) => /victim/.test(l)), `never on the wire: ${lines.join(' | ')}`);
});

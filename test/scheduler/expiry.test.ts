/**
 * Expiry: recipients still undelivered after max_queue_lifetime (here 2 h, a
 * host that refuses every connection) become `expired` and the sender gets
 * one failure DSN (from <>, dsnFor the original) naming each of them with
 * Action: failed and Status: 4.4.7. The sender is local, so the DSN is
 * delivered to its Maildir, where it is parsed as a user's mail reader would.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import type { NewMessage } from '../../src/queue/model.js';
import { closedPort, enqueueMany, LOCAL_DOMAIN, REMOTE_DOMAIN, SENDER, simulate, startHarness } from './harness.js';

const HOUR = 3_600_000;

test('after max_queue_lifetime recipients expire and the sender gets one DSN with Status 4.4.7', async () => {
  const port = await closedPort();
  const h = await startHarness(port, { max_queue_lifetime: '2h', destination_backoff: '1m', destination_backoff_max: '1h' });
  after(() => h.stop());
  const start = h.clock.now();
  const [id] = await enqueueMany(h.app.store, { count: 1, perMessage: 2, destination: h.destination, receivedAt: start });
  const addresses = [`user0-0@${REMOTE_DOMAIN}`, `user0-1@${REMOTE_DOMAIN}`];

  // Watch what the scheduler enqueues (the DSN is delivered locally and removed in the same pass).
  const enqueued: NewMessage[] = [];
  const store = h.app.store;
  const enqueue = store.messages.enqueue.bind(store.messages);
  store.messages.enqueue = (m: NewMessage) => { enqueued.push(m); return enqueue(m); };

  const maildir = join(h.dataDir, 'mailboxes', LOCAL_DOMAIN, 'sender', 'new');
  const inbox = (): string[] => { try { return readdirSync(maildir); } catch { return []; } };
  const attempts = () => h.app.smtp.stats.connectionsOpened;

  // Just short of the lifetime: still queued, no report.
  await simulate(h, start + 2 * HOUR, attempts);
  const waiting = await store.recipients.getRecipients(id!);
  assert.deepEqual(waiting.map((r) => r.state).sort(), ['deferred', 'deferred']);
  assert.equal(enqueued.length, 0);
  assert.equal(inbox().length, 0);

  // Past it.
  await simulate(h, start + 3 * HOUR, attempts);
  assert.equal(enqueued.length, 1, 'exactly one DSN for the message');
  const dsn = enqueued[0]!;
  assert.equal(dsn.sender, '');
  assert.equal(dsn.dsnFor, id);
  assert.deepEqual(dsn.recipients.map((r) => r.address), [SENDER]);
  // The original is gone from the queue (all final, report sent) and nothing else waits.
  assert.equal(await store.messages.getMessage(id!), undefined);
  const { byState } = await store.recipients.counts();
  assert.equal(byState.queued + byState.deferred + byState.inflight, 0, JSON.stringify(byState));

  const files = inbox();
  assert.equal(files.length, 1, 'the DSN reached the sender’s mailbox');
  const raw = readFileSync(join(maildir, files[0]!));
  const mail = await simpleParser(raw);
  assert.match(raw.toString('latin1'), /^Return-Path: <>\r?$/m, 'a DSN comes from the null sender');
  const ct = mail.headers.get('content-type') as { value: string; params: Record<string, string> } | undefined;
  assert.equal(ct?.value, 'multipart/report');
  assert.equal(ct?.params['report-type'], 'delivery-status');
  assert.match(raw.toString('latin1'), /^Content-Type: message\/delivery-status\r?$/mi);
  // mailparser inlines the message/delivery-status part into the text, after the human-readable part.
  const text = mail.text ?? '';
  // One per-recipient block per expired recipient, each failed with 4.4.7.
  const blocks = text.split(/\r?\n\r?\n/).filter((b) => /Final-Recipient:/i.test(b));
  assert.equal(blocks.length, 2, text);
  for (const addr of addresses) {
    const b = blocks.find((x) => x.toLowerCase().includes(`rfc822;${addr}`) || x.toLowerCase().includes(`rfc822; ${addr}`));
    assert.ok(b, `${addr} not named in:\n${text}`);
    assert.match(b, /^Action: failed$/mi);
    assert.match(b, /^Status: 4\.4\.7$/mi);
  }
});

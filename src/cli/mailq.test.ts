/** cli/mailq: postqueue -p's layout, read against Postfix 3.7's long-queue-id columns. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueEntry } from '../http/admin-api.js';
import type { RecipientRow } from '../queue/model.js';
import { arrivalTime, formatMailq } from './mailq.js';

const AT = new Date(2026, 11, 7, 0, 12, 34).getTime(); // local time, as postqueue prints it
const rcpt = (id: number, address: string, state: RecipientRow['state'], text?: string): RecipientRow => ({
  id, messageId: 'M', address, destination: 'd', state, attempts: 1, nextAttemptAt: AT, delayNotified: false, dsnDone: false, updatedAt: AT,
  ...(text ? { lastReply: { code: 451, enhanced: '4.4.1', text, host: 'mx.dead.test[192.0.2.9]:25', command: 'RCPT TO' } } : {}),
});
const entry = (id: string, sender: string, size: number, held: boolean, recipients: RecipientRow[]): QueueEntry => ({
  message: { id, sender, params: { smtputf8: false }, receivedAt: AT, size, trace: { clientIp: '127.0.0.1', clientHelo: 'x', protocol: 'ESMTP' }, held }, recipients,
});

test('arrival time is ctime without the year, day of month padded', () => {
  assert.equal(arrivalTime(AT), 'Mon Dec  7 00:12:34');
});

test('an empty queue, or one with only final recipients, is "Mail queue is empty"', () => {
  assert.equal(formatMailq([]), 'Mail queue is empty\n');
  assert.equal(formatMailq([entry('01M96W1FNZ8ZMJDW', 'a@x.test', 10, false, [rcpt(1, 'b@y.test', 'delivered')])]), 'Mail queue is empty\n');
});

test('header, id with * (in flight) or ! (held), size, arrival, sender; reasons once above their recipients; the total', () => {
  const out = formatMailq([
    entry('01M96W1FNZ8ZMJDW', 'ann@src.test', 2048, false, [
      rcpt(1, 'b1@dead.test', 'deferred', 'try later'), rcpt(2, 'b2@dead.test', 'deferred', 'try later'),
      rcpt(3, 'c@other.test', 'deferred', 'mailbox busy'), rcpt(4, 'done@y.test', 'delivered'),
    ]),
    entry('01M96W1FNZ8ZMJDX', '', 1000, true, [rcpt(5, 'postmaster@src.test', 'queued')]),
    entry('01M96W1FNZ8ZMJDY', 'z@src.test', 100, false, [rcpt(6, 'now@y.test', 'inflight', 'old reply')]),
  ]);
  const pad = ' '.repeat(47);
  assert.equal(out, [
    '----Queue ID----- --Size-- ----Arrival Time--- -Sender/Recipient-------',
    '01M96W1FNZ8ZMJDW      2048 Mon Dec  7 00:12:34 ann@src.test',
    '        (host mx.dead.test[192.0.2.9]:25 said: 451 4.4.1 try later (in reply to RCPT TO))',
    `${pad}b1@dead.test`,
    `${pad}b2@dead.test`,
    '        (host mx.dead.test[192.0.2.9]:25 said: 451 4.4.1 mailbox busy (in reply to RCPT TO))',
    `${pad}c@other.test`,
    '',
    '01M96W1FNZ8ZMJDX!     1000 Mon Dec  7 00:12:34 MAILER-DAEMON',
    `${pad}postmaster@src.test`,
    '',
    '01M96W1FNZ8ZMJDY*      100 Mon Dec  7 00:12:34 z@src.test',
    `${pad}now@y.test`,
    '',
    '-- 3 Kbytes in 3 Requests.',
    '',
  ].join('\n'));
});

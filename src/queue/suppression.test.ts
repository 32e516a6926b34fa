/**
 * queue/suppression tests — which failures suppress (only a 5xx whose class
 * speaks for the address), the refusal's wording, and the CSV round trip
 * with its refusals.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shippedClassifier } from '../config/bounce-rules-file.js';
import type { LastReply } from './model.js';
import { fromCsv, suppressedReply, suppressionUntil, toCsv, type SuppressionEntry } from './suppression.js';

const T = Date.UTC(2026, 11, 6, 23, 40, 12);
const on = { enabled: true, ttlMs: 30 * 86_400_000 };
const classified = (r: LastReply): LastReply => ({ ...r, class: shippedClassifier().classify(r) });

test('only a permanent failure that speaks for the address suppresses it', () => {
  const cases: [LastReply, boolean][] = [
    [{ code: 550, enhanced: '5.1.1', text: 'User unknown', command: 'RCPT TO' }, true],
    [{ code: 556, enhanced: '5.1.10', text: 'null MX', command: 'resolve' }, true],
    [{ code: 550, enhanced: '5.1.2', text: 'Domain does not exist', command: 'resolve' }, true],
    [{ code: 550, enhanced: '5.2.1', text: 'The email account that you tried to reach is disabled.', command: 'RCPT TO' }, true],
    [{ code: 550, enhanced: '5.7.1', text: 'Service unavailable; low reputation of the sending IP', command: 'RCPT TO' }, false],
    [{ code: 552, enhanced: '5.2.2', text: 'Mailbox full', command: 'RCPT TO' }, false],
    [{ code: 450, enhanced: '4.1.1', text: 'User unknown (try later)', command: 'RCPT TO' }, false],
    [{ code: 550, enhanced: '5.2.1', text: 'The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.' }, false],
    [{ code: 550, enhanced: '5.7.26', text: 'unauthenticated, DMARC', command: 'end of DATA' }, false],
    [{ code: 554, enhanced: '5.7.9', text: 'Message not accepted for policy reasons.' }, false],
    [{ code: 550, text: 'Rejected' }, false],
  ];
  for (const [r, want] of cases) {
    assert.equal(suppressionUntil(classified(r), T, on) !== undefined, want, `${r.code} ${r.enhanced ?? ''} ${r.text}`);
  }
  const unknown = classified(cases[0]![0]);
  assert.equal(suppressionUntil(unknown, T, on), T + on.ttlMs);
  assert.equal(suppressionUntil(unknown, T, { ...on, enabled: false }), undefined);
  assert.equal(suppressionUntil({ code: 550, text: 'x' }, T, on), undefined, 'an unclassified reply never suppresses');
});

const entry: SuppressionEntry = {
  address: 'Bob@x.test', class: 'InvalidRecipient', source: 'bounce', queueId: '01M96WQFBKC88WE8', since: T, until: T + on.ttlMs,
  reply: { code: 550, enhanced: '5.1.1', text: '<Bob@x.test>: Recipient address rejected: User unknown, "really", gone', host: 'mx[127.0.0.1]:25' },
};

test('the refusal names the address, the date and the original reply', () => {
  assert.deepEqual(suppressedReply('bob@x.test', entry), {
    code: 550, enhanced: '5.1.1',
    text: '<bob@x.test>: recipient suppressed since 2026-12-06T23:40:12Z: 550 5.1.1 <Bob@x.test>: Recipient address rejected: User unknown, "really", gone',
  });
});

test('CSV: an export reads back the same; a hand-made file needs only addresses; bad lines refuse the whole file', () => {
  const csv = toCsv([entry]);
  assert.match(csv, /^address,class,since,until,source,queue_id,reply\r\n/);
  const back = fromCsv(csv, 0, 1);
  assert.deepEqual(back.problems, []);
  assert.deepEqual(back.entries, [{ ...entry, reply: { code: 550, enhanced: '5.1.1', text: entry.reply.text } }]);
  // A quoted local part holding a comma, quoted again as a CSV field.
  const hand = fromCsv('address\nalice@a.test\n"""carol,first""@b.test"\n', T, 1000);
  assert.deepEqual(hand.problems, []);
  assert.deepEqual(hand.entries.map((e) => [e.address, e.class, e.source, e.since, e.until]),
    [['alice@a.test', 'InvalidRecipient', 'import', T, T + 1000], ['"carol,first"@b.test', 'InvalidRecipient', 'import', T, T + 1000]]);
  // Addresses are checked as `suppression add` checks them (smtp/address), not only for an "@".
  const bad = fromCsv('address,class\nnot-an-address,InvalidRecipient\nok@x.test,Nope\nfine@x.test,BadDomain\nbob@x..test,BadDomain\n', T, 1000);
  assert.deepEqual(bad.problems, ['line 2: "not-an-address" is not an address', 'line 3: class "Nope" is not a bounce class', 'line 5: "bob@x..test" is not an address']);
  assert.deepEqual(bad.entries, []);
});

/** cli/queue-tools-format: qshape's table, postcat's sections, and what reaches a terminal from mail. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageDetail } from '../http/admin-api.js';
import { queueShape } from '../http/queue-shape.js';
import type { MessageRow, RecipientRow } from '../queue/model.js';
import { catJson, formatCat, formatShape, headerFields } from './queue-tools-format.js';
import { decodeForTerminal, printable } from './terminal.js';

const NOW = Date.UTC(2026, 10, 30, 13, 0, 0);
const MIN = 60_000;

function message(id: string, ageMin: number, held = false): MessageRow {
  return { id, sender: 'alice@src.test', params: { smtputf8: false, body: '8BITMIME' }, receivedAt: NOW - ageMin * MIN, size: 321,
    trace: { clientIp: '192.0.2.7', clientHelo: 'client.src.test', protocol: 'ESMTPS', tls: 'TLSv1.3' }, held };
}
function rcpt(id: number, address: string, state: RecipientRow['state'], extra: Partial<RecipientRow> = {}): RecipientRow {
  return { id, messageId: 'M', address, destination: address.split('@')[1]!, state, attempts: 1, nextAttemptAt: NOW + 10 * MIN,
    delayNotified: false, dsnDone: false, updatedAt: NOW, ...extra };
}

test('formatShape: qshape\'s heads, TOTAL first, every column right-aligned, held in a table of its own', () => {
  const s = queueShape([
    { domain: 'example.test', destination: 'example.test', held: false, bucket: 0, n: 2 },
    { domain: 'very-long-domain.example.test', destination: 'x', held: false, bucket: 9, n: 1 },
    { domain: 'held.test', destination: 'held.test', held: true, bucket: 2, n: 1 },
  ]);
  const lines = formatShape(s).split('\n');
  assert.deepEqual(lines.slice(0, 4), [
    '                              T 5 10 20 40 80 160 320 640 1280 1280+',
    '                        TOTAL 3 2  0  0  0  0   0   0   0    0     1',
    '                 example.test 2 2  0  0  0  0   0   0   0    0     0',
    'very-long-domain.example.test 1 0  0  0  0  0   0   0   0    0     1',
  ]);
  assert.equal(lines[4], '');
  assert.equal(lines[5], 'held (no delivery until released):');
  assert.equal(lines[7], '                         HELD 1 0  0  1  0  0   0   0   0    0     0');
  assert.equal(lines[8], '                    held.test 1 0  0  1  0  0   0   0   0    0     0');
  // Every line of both tables has the same width: columns line up.
  assert.equal(new Set([0, 1, 2, 3, 6, 7, 8].map((i) => lines[i]!.length)).size, 1);
  assert.match(formatShape(queueShape([])), /TOTAL +0 +0 .*\n\nheld: none\n$/);
});

test('printable: escape sequences, CR, NUL, DEL, C1 and bidi overrides come out escaped; tabs and text stay', () => {
  assert.equal(printable('Sub\x1b[2J\x1b]0;pwned\x07ject'), 'Sub\\x1b[2J\\x1b]0;pwned\\x07ject');
  assert.equal(printable('a\r\nb\x00\x7f\x9b\u202ec\td é'), 'a\\r\\nb\\x00\\x7f\\x9b\\u{202e}c\td é');
  assert.equal(printable('line1\r\nline2\rX\n', true), 'line1\nline2\\rX\n');
  assert.equal(decodeForTerminal(Buffer.from('caf\xe9\n', 'latin1')), 'caf\\xe9\n');
  assert.equal(decodeForTerminal(Buffer.from('café\n', 'utf8')), 'café\n');
});

const content = Buffer.from('Received: from x\r\n\tby y\r\nSubject: hi \x1b[31mred\r\nMessage-ID: <m1@src.test>\r\n\r\nbody \x1b]52;c;aGk=\x07line\r\nsecond\r\n', 'latin1');
const detail: MessageDetail = {
  message: message('0123456789ABCDEF', 90, true),
  headers: { subject: 'hi' },
  recipients: [{
    ...rcpt(1, 'bob@dest.test', 'deferred', { attempts: 2, orcpt: 'rfc822;bob@dest.test', lastReply: { code: 451, text: 'later' } }),
    next: { at: NOW + 10 * MIN, why: 'held' },
    history: [
      { recipientId: 1, at: NOW - 80 * MIN, state: 'deferred', reply: { code: 451, enhanced: '4.7.1', text: 'greylisted \x1b[5m', host: 'mx.dest.test[192.0.2.9]:25', command: 'RCPT TO' } },
      { recipientId: 1, at: NOW - 20 * MIN, state: 'deferred', reply: { code: 451, enhanced: '4.4.1', text: 'connect failed (ECONNREFUSED)', host: 'mx.dest.test[192.0.2.9]:25', command: 'connect', ours: true } },
    ],
  }],
};

test('formatCat: envelope with each recipient\'s replies (time, host, command), headers, body; nothing from mail reaches the terminal raw', () => {
  const all = { envelope: true, headers: true, body: true };
  const out = formatCat(detail, content, all, NOW);
  assert.doesNotMatch(out, /[\x00-\x08\x0b-\x1f\x7f]/, 'no control character but LF and TAB');
  assert.match(out, /^\*\*\* ENVELOPE RECORDS 0123456789ABCDEF \*\*\*\n/);
  assert.match(out, /message_size: +321\n/);
  assert.match(out, /message_arrival_time: +Mon, 30 Nov 2026 11:30:00 GMT \(1h30m ago\)\n/);
  assert.match(out, /sender: +alice@src\.test\n/);
  assert.match(out, /client: +client\.src\.test \[192\.0\.2\.7\]\n/);
  assert.match(out, /held: +yes/);
  assert.match(out, /recipient: +<bob@dest\.test>  deferred, 2 attempt\(s\), held \(no attempt until released\)  via dest\.test\n/);
  assert.match(out, /\n    2026-11-30T11:40:00\.000Z  deferred  host mx\.dest\.test\[192\.0\.2\.9\]:25 said: 451 4\.7\.1 greylisted \\x1b\[5m \(in reply to RCPT TO\)\n/);
  assert.match(out, /\n    2026-11-30T12:40:00\.000Z  deferred  connect to mx\.dest\.test\[192\.0\.2\.9\]:25 failed: connect failed \(ECONNREFUSED\) \[no reply; recorded as 451 4\.4\.1\]\n/);
  assert.match(out, /\*\*\* HEADERS 0123456789ABCDEF \*\*\*\nReceived: from x\n\tby y\nSubject: hi \\x1b\[31mred\nMessage-ID: <m1@src\.test>\n\*\*\* BODY/);
  assert.match(out, /\*\*\* BODY 0123456789ABCDEF \*\*\*\nbody \\x1b\]52;c;aGk=\\x07line\nsecond\n\*\*\* END 0123456789ABCDEF \*\*\*\n$/);

  const headersOnly = formatCat(detail, content, { envelope: false, headers: true, body: false }, NOW);
  assert.doesNotMatch(headersOnly, /ENVELOPE|BODY|second/);
  assert.match(headersOnly, /^\*\*\* HEADERS/);
  const bodyOnly = formatCat(detail, content, { envelope: false, headers: false, body: true }, NOW);
  assert.doesNotMatch(bodyOnly, /Subject|ENVELOPE/);
});

test('catJson: every header field unfolded, the body as text, or base64 when it is not UTF-8', () => {
  const j = catJson(detail, content, { envelope: true, headers: true, body: true });
  assert.deepEqual(j.headers, [
    { name: 'Received', value: 'from x\tby y' }, { name: 'Subject', value: 'hi \x1b[31mred' }, { name: 'Message-ID', value: '<m1@src.test>' },
  ]);
  assert.equal(j.body, 'body \x1b]52;c;aGk=\x07line\r\nsecond\r\n');
  assert.equal((j.recipients as unknown[]).length, 1);
  const latin = catJson(detail, Buffer.from('Subject: x\r\n\r\ncaf\xe9\r\n', 'latin1'), { envelope: false, headers: false, body: true });
  assert.deepEqual(latin, { id: '0123456789ABCDEF', bodyBase64: Buffer.from('caf\xe9\r\n', 'latin1').toString('base64') });
  assert.deepEqual(headerFields(Buffer.from('A: 1\r\nB:\r\n 2\r\n')), [{ name: 'A', value: '1' }, { name: 'B', value: '2' }]);
});

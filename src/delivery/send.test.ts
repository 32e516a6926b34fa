/**
 * Unit tests for the pure parts of the SMTP client: EHLO capability parsing
 * (connection.ts) and the MAIL FROM / RCPT TO lines and pre-checks (send.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_CAPABILITIES, parseEhlo } from './connection.js';
import { mailFromLine, precheck, rcptToLine } from './send.js';
import type { MessageRow, RecipientRow } from '../queue/model.js';

const msg = (params: MessageRow['params'], sender = 'a@origin.test'): MessageRow => ({
  id: 'M', sender, params, receivedAt: 0, size: 0, held: false,
  trace: { clientIp: '127.0.0.1', clientHelo: 'x', protocol: 'ESMTP' },
});
const rcpt = (over: Partial<RecipientRow> = {}): RecipientRow => ({
  id: 1, messageId: 'M', address: 'b@example.test', destination: 'example.test', state: 'inflight',
  attempts: 0, nextAttemptAt: 0, delayNotified: false, dsnDone: false, updatedAt: 0, ...over,
});

describe('parseEhlo', () => {
  test('reads the extensions a server offers', () => {
    const c = parseEhlo(['mx.test greets you', 'PIPELINING', 'SIZE 1000', '8BITMIME', 'SMTPUTF8', 'DSN', 'STARTTLS', 'AUTH PLAIN LOGIN', 'AUTH=CRAM-MD5', 'CHUNKING', 'X-UNKNOWN 1']);
    assert.deepEqual(c, { esmtp: true, pipelining: true, size: 1000, eightBitMime: true, smtputf8: true, dsn: true, starttls: true, chunking: true, auth: ['PLAIN', 'LOGIN', 'CRAM-MD5'] });
  });
  test('SIZE without a number is offered without a limit; the greeting line is not a keyword', () => {
    const c = parseEhlo(['PIPELINING is my name', 'SIZE']);
    assert.equal(c.size, 0);
    assert.equal(c.pipelining, false);
  });
});

describe('MAIL FROM / RCPT TO lines', () => {
  const all = { ...parseEhlo(['x', 'SIZE 0', '8BITMIME', 'SMTPUTF8', 'DSN']) };
  test('parameters only for what is offered', () => {
    const m = msg({ smtputf8: false, ret: 'FULL', envid: 'a+b' });
    const body = Buffer.from('\xe9\r\n', 'latin1');
    assert.equal(mailFromLine(m, body, [rcpt()], all), 'MAIL FROM:<a@origin.test> SIZE=3 BODY=8BITMIME RET=FULL ENVID=a+2Bb\r\n');
    assert.equal(mailFromLine(m, body, [rcpt()], NO_CAPABILITIES), 'MAIL FROM:<a@origin.test>\r\n');
    assert.equal(mailFromLine(msg({ smtputf8: false }, ''), Buffer.from('x'), [rcpt()], NO_CAPABILITIES), 'MAIL FROM:<>\r\n');
  });
  test('NOTIFY and ORCPT (xtext) only with DSN', () => {
    const r = rcpt({ notify: 'NEVER', orcpt: 'rfc822;x=y@example.test' });
    assert.equal(rcptToLine(r, all), 'RCPT TO:<b@example.test> NOTIFY=NEVER ORCPT=rfc822;x+3Dy@example.test\r\n');
    assert.equal(rcptToLine(r, NO_CAPABILITIES), 'RCPT TO:<b@example.test>\r\n');
  });
  test('pre-checks: SIZE exceeded → 552 5.3.4; SMTPUTF8 needed and missing → 5.6.7; else none', () => {
    const big = Buffer.alloc(101);
    assert.equal(precheck(parseEhlo(['x', 'SIZE 100']), msg({ smtputf8: false }), big, [rcpt()], 'h')?.enhanced, '5.3.4');
    assert.equal(precheck(parseEhlo(['x', 'SIZE 0']), msg({ smtputf8: false }), big, [rcpt()], 'h'), undefined);
    assert.equal(precheck(NO_CAPABILITIES, msg({ smtputf8: false }), big, [rcpt({ address: 'jörg@example.test' })], 'h')?.enhanced, '5.6.7');
    assert.equal(precheck(all, msg({ smtputf8: true }), big, [rcpt()], 'h'), undefined);
  });
});

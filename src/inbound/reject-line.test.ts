import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bareAddress, rejectLine } from './reject-line.js';

test('the Postfix-like message names stage, client, reply, sender, recipient, proto and HELO', () => {
  const { fields, msg } = rejectLine('RCPT', 'unknown_user', { ip: '192.0.2.7', helo: 'mail.example.net', from: '', proto: 'ESMTP' },
    { code: 550, enhanced: '5.1.1', text: '<x@example.org>: Recipient address rejected: User unknown' }, '<x@example.org>');
  assert.equal(msg, 'NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 <x@example.org>: Recipient address rejected: User unknown; from=<> to=<x@example.org> proto=ESMTP helo=<mail.example.net>');
  assert.equal(fields.event, 'reject');
  assert.equal(fields.from, '', 'the null sender is logged as ""');
  assert.equal(fields.to, 'x@example.org');
  assert.equal(fields.dsn, '5.1.1');
  assert.equal(fields.reply, '550 5.1.1 <x@example.org>: Recipient address rejected: User unknown');
});

test('before MAIL there is no from=; a connection refusal has only the client and the reply', () => {
  const { fields, msg } = rejectLine('CONNECT', 'rate_connections', { ip: '::1' }, { code: 421, enhanced: '4.7.0', text: 'Too many connections' });
  assert.equal(msg, 'NOQUEUE: reject: CONNECT from unknown[::1]: 421 4.7.0 Too many connections');
  assert.equal('from' in fields && fields.from !== undefined, false);
});

test('control bytes from the client never reach the message verbatim (a pretty log line stays one line)', () => {
  const { msg } = rejectLine('MAIL', 'syntax', { ip: '192.0.2.7', helo: 'a\x1b[31mb', from: 'x\ry@z' }, { code: 501, enhanced: '5.1.7', text: 'Bad sender address' });
  assert.doesNotMatch(msg, /[\x00-\x1f]/);
  assert.match(msg, /helo=<a\?\[31mb>/);
});

test('bareAddress strips one pair of angle brackets', () => {
  assert.equal(bareAddress('<a@b>'), 'a@b');
  assert.equal(bareAddress(' a@b '), 'a@b');
});

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommand } from './command.js';
import { LineReader } from './lines.js';
import { decodeXtext, encodeXtext, parseMailParams, parseRcptParams } from './params.js';
import { ReplyParser, formatReply } from './reply.js';

const all = { size: true, eightBitMime: true, smtputf8: true, dsn: true, auth: true };

describe('parseCommand', () => {
  test('verbs are case-insensitive and arguments split', () => {
    assert.deepEqual(parseCommand('ehlo client.test'), { verb: 'EHLO', domain: 'client.test' });
    assert.deepEqual(parseCommand('MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME'), { verb: 'MAIL', path: '<a@b.test>', params: 'SIZE=100 BODY=8BITMIME' });
    assert.deepEqual(parseCommand('rcpt to: <a@b.test>'), { verb: 'RCPT', path: '<a@b.test>', params: '' });
    assert.deepEqual(parseCommand('RCPT TO:<"x> y"@b.test> NOTIFY=NEVER'), { verb: 'RCPT', path: '<"x> y"@b.test>', params: 'NOTIFY=NEVER' });
    assert.deepEqual(parseCommand('BDAT 1000 LAST'), { verb: 'BDAT', size: 1000, last: true });
    assert.deepEqual(parseCommand('AUTH PLAIN AGFsaWNlAHB3'), { verb: 'AUTH', mechanism: 'PLAIN', initial: 'AGFsaWNlAHB3' });
  });

  test('errors are typed', () => {
    assert.deepEqual(parseCommand('FOO bar'), { error: 'unknown', verb: 'FOO' });
    assert.equal((parseCommand('EHLO') as { error: string }).error, 'syntax');
    assert.equal((parseCommand('MAIL <a@b>') as { error: string }).error, 'syntax');
    assert.equal((parseCommand('DATA now') as { error: string }).error, 'syntax');
    assert.equal((parseCommand('BDAT x') as { error: string }).error, 'syntax');
  });
});

describe('ESMTP parameters', () => {
  test('MAIL parameters', () => {
    assert.deepEqual(parseMailParams('SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc+2Bdef', all),
      { size: 10, body: '8BITMIME', smtputf8: true, ret: 'HDRS', envid: 'abc+def', auth: undefined });
    assert.equal((parseMailParams('SIZE=x', all) as { error: string }).error, 'bad-value');
    assert.equal((parseMailParams('FOO=1', all) as { error: string }).error, 'unsupported');
    assert.equal((parseMailParams('RET=FULL', { ...all, dsn: false }) as { error: string }).error, 'unsupported');
    assert.equal((parseMailParams('SIZE=1 SIZE=2', all) as { error: string }).error, 'syntax');
  });
  test('RCPT parameters', () => {
    assert.deepEqual(parseRcptParams('NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b.test', all), { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;a@b.test' });
    assert.deepEqual(parseRcptParams('NOTIFY=NEVER', all), { notify: 'NEVER', orcpt: undefined });
    assert.equal((parseRcptParams('NOTIFY=NEVER,SUCCESS', all) as { error: string }).error, 'bad-value');
    assert.equal((parseRcptParams('ORCPT=nosemicolon', all) as { error: string }).error, 'bad-value');
  });
  test('xtext round trip', () => {
    assert.equal(decodeXtext(encodeXtext('a+b=c d')), 'a+b=c d');
    assert.equal(decodeXtext('bad+zz'), undefined);
  });
});

describe('LineReader', () => {
  test('splits lines and reports an overlong one without buffering it', () => {
    const r = new LineReader(512);
    r.push(Buffer.from('NOOP\r\nRSET\n'));
    assert.deepEqual(r.next(), { line: 'NOOP' });
    assert.deepEqual(r.next(), { line: 'RSET' });
    assert.equal(r.next(), undefined);
    r.push(Buffer.alloc(600, 0x41));
    assert.deepEqual(r.next(), { overlong: true });
    assert.equal(r.pending, 0, 'nothing of the overlong line is kept');
    r.push(Buffer.alloc(600, 0x41));
    assert.equal(r.next(), undefined, 'reported once');
    r.push(Buffer.from('AAA\r\nQUIT\r\n'));
    assert.deepEqual(r.next(), { line: 'QUIT' });
  });
});

describe('replies', () => {
  test('formatReply puts the enhanced code on every line and strips CR/LF from text', () => {
    assert.equal(formatReply(250, '2.0.0', 'a', 'b\r\nc'), '250-2.0.0 a\r\n250 2.0.0 b c\r\n');
  });
  test('ReplyParser reads multi-line replies and enhanced codes whose class matches', () => {
    const p = new ReplyParser();
    const replies = p.push('250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n552 5.2.2 Mailbox full\r\n452 5.5.3 odd\r\n55');
    assert.equal(replies.length, 3);
    assert.deepEqual(replies[0], { code: 250, lines: ['mx.test', 'PIPELINING', 'SIZE 100'] });
    assert.deepEqual(replies[1], { code: 552, enhanced: '5.2.2', lines: ['Mailbox full'] });
    assert.equal(replies[2]!.enhanced, undefined, 'class digit 5 does not match 452');
    assert.deepEqual(p.push('4 no\r\n'), [{ code: 554, lines: ['no'] }]);
  });
});

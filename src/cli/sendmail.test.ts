import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addressesOf, parseSendmailArgs, prepareMessage, readMessage } from './sendmail.js';

describe('parseSendmailArgs', () => {
  test('flags as cron, PHP mail() and mailx pass them', () => {
    const a = parseSendmailArgs(['-t', '-i', '-fme@x.test', '-F', 'Me', '-oem', '-odb', '-v', 'a@y.test', 'b@y.test']);
    assert.equal(a.extractRecipients, true);
    assert.equal(a.ignoreDots, true);
    assert.equal(a.sender, 'me@x.test');
    assert.equal(a.fullName, 'Me');
    assert.equal(a.mode, 'deliver');
    assert.deepEqual(a.recipients, ['a@y.test', 'b@y.test']);
    assert.deepEqual(a.ignored, ['-oem', '-odb', '-v']);
  });
  test('-oi, -r, -f with a separate value, -bs, -C and --', () => {
    const a = parseSendmailArgs(['-oi', '-r', 'bounce@x.test', '-bs', '-C', '/etc/h.toml', '--', '-odd@y.test']);
    assert.equal(a.ignoreDots, true);
    assert.equal(a.sender, 'bounce@x.test');
    assert.equal(a.mode, 'smtp');
    assert.equal(a.config, '/etc/h.toml');
    assert.deepEqual(a.recipients, ['-odd@y.test']);
  });
  test('refuses what it cannot do', () => {
    assert.throws(() => parseSendmailArgs(['-bp']), /not supported/);
    assert.equal(parseSendmailArgs(['-bi']).mode, 'newaliases');
    assert.equal(parseSendmailArgs(['-I', '-C', 'x.toml']).mode, 'newaliases');
    assert.throws(() => parseSendmailArgs(['-f']), /needs a value/);
    assert.throws(() => parseSendmailArgs(['-Z']), /unknown option/);
  });
});

test('readMessage: a lone dot ends input unless -i', () => {
  assert.equal(readMessage('a\n.\nb\n', false), 'a\n');
  assert.equal(readMessage('a\r\n.\r\nb\r\n', false), 'a\r\n');
  assert.equal(readMessage('a\n.\nb\n', true), 'a\n.\nb\n');
  assert.equal(readMessage('a\n..\nb\n', false), 'a\n..\nb\n');
});

test('addressesOf: display names, comments, groups, quoted commas', () => {
  assert.deepEqual(addressesOf('"Doe, Jane" <jane@x.test>, bob@y.test (Bob), team: c@z.test, d@z.test;'), ['jane@x.test', 'bob@y.test', 'c@z.test', 'd@z.test']);
  assert.deepEqual(addressesOf('undisclosed-recipients:;'), []);
});

describe('prepareMessage', () => {
  const env = { user: 'cron', hostname: 'host.test' };
  test('-t takes To, Cc and Bcc (folded too), removes Bcc, keeps argument recipients', () => {
    const raw = 'To: a@x.test,\n b@x.test\nCc: C <c@x.test>\nBcc: hidden@x.test,\n  hidden2@x.test\nSubject: s\n\nbody\n';
    const p = prepareMessage(raw, parseSendmailArgs(['-t', 'arg@x.test']), env);
    assert.deepEqual(p.recipients, ['arg@x.test', 'a@x.test', 'b@x.test', 'c@x.test', 'hidden@x.test', 'hidden2@x.test']);
    // The Bcc field and its (folded) addresses are gone.
    assert.doesNotMatch(p.content, /hidden|^Bcc:/im);
    assert.match(p.content, /^To: a@x\.test,\n b@x\.test\nCc: C <c@x\.test>\nSubject: s\n/);
    assert.match(p.content, /\n\nbody\n$/);
  });
  test('adds From (with -F) only when missing, and leaves Date and Message-ID to the intake; default sender is user@hostname', () => {
    const p = prepareMessage('Subject: s\n\nx\n', parseSendmailArgs(['-F', 'Cron "Daemon"', 'r@x.test']), env);
    assert.equal(p.sender, 'cron@host.test');
    assert.match(p.content, /^From: "Cron \\"Daemon\\"" <cron@host\.test>$/m);
    assert.doesNotMatch(p.content, /^(Date|Message-ID):/im);
    const q = prepareMessage('From: me@x.test\nDate: yesterday\nMessage-ID: <m@x>\n\nx\n', parseSendmailArgs(['r@x.test']), env);
    assert.equal(q.content, 'From: me@x.test\nDate: yesterday\nMessage-ID: <m@x>\n\nx\n');
  });
  test('a message without headers gets them, and its text stays the body', () => {
    const p = prepareMessage('just text\n', parseSendmailArgs(['-f', '<>', 'r@x.test']), env);
    assert.equal(p.sender, '');
    assert.match(p.content, /\n\njust text\n$/);
  });
});

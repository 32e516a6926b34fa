/**
 * Tests for delivery/failure-policy: one case per row of the decision table,
 * plus the "too many connections" wordings of real providers and replies that
 * must NOT be read as a throttle.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { asksToThrottle, judgeReply, judgeTrouble, type TroubleStage } from './failure-policy.js';

const r = (code: number, text: string, enhanced?: string) => ({ code, text, ...(enhanced ? { enhanced } : {}) });
const TIMEOUT = r(451, 'timeout after 300ms waiting for the reply to greeting', '4.4.1');
const CONNECT_TIMEOUT = r(451, 'connect timeout after 500ms', '4.4.1');
const REFUSED = r(451, 'connect failed (ECONNREFUSED)', '4.4.1');
const DROPPED = r(451, 'connection closed by the remote host', '4.4.2');

type Row = [TroubleStage, ReturnType<typeof r>, { scope: string; recipients: string; destinationFailure: boolean; nextHost: boolean; throttle: boolean }];

const rows: Row[] = [
  ['resolve', r(550, 'Domain not found', '5.1.2'), { scope: 'resolve', recipients: 'bounce', destinationFailure: false, nextHost: false, throttle: false }],
  ['resolve', r(451, 'DNS temporary failure', '4.4.3'), { scope: 'resolve', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: false }],
  ['connect', CONNECT_TIMEOUT, { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: true }],
  ['connect', REFUSED, { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: false }],
  ['greeting', r(421, 'Too many connections, try later', '4.7.0'), { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: true }],
  ['greeting', r(421, 'Service not available'), { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: false }],
  ['greeting', r(554, 'No SMTP service here'), { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: false }],
  ['greeting', TIMEOUT, { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: true }],
  ['EHLO', r(421, 'closing', '4.3.2'), { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: false }],
  ['STARTTLS', r(451, 'TLS handshake failed', '4.7.5'), { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: false }],
  ['AUTH', r(535, 'bad credentials', '5.7.8'), { scope: 'host', recipients: 'defer', destinationFailure: true, nextHost: true, throttle: false }],
  ['MAIL FROM', r(421, 'Too many concurrent SMTP connections', '4.7.0'), { scope: 'session', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: true }],
  ['MAIL FROM', r(421, 'shutting down'), { scope: 'session', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: false }],
  ['MAIL FROM', r(451, 'Temporary rate limit, too many connections', '4.7.28'), { scope: 'session', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: true }],
  ['MAIL FROM', r(450, 'Too many concurrent SMTP connections from this IP'), { scope: 'session', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: true }],
  ['MAIL FROM', r(451, 'local error', '4.3.0'), { scope: 'transaction', recipients: 'defer', destinationFailure: false, nextHost: false, throttle: false }],
  ['MAIL FROM', r(553, 'sender rejected', '5.7.1'), { scope: 'transaction', recipients: 'bounce', destinationFailure: false, nextHost: false, throttle: false }],
  ['RCPT TO', r(421, 'closing'), { scope: 'session', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: false }],
  ['RCPT TO', r(550, 'no such user', '5.1.1'), { scope: 'recipient', recipients: 'bounce', destinationFailure: false, nextHost: false, throttle: false }],
  ['DATA', r(451, 'try later'), { scope: 'transaction', recipients: 'defer', destinationFailure: false, nextHost: false, throttle: false }],
  ['DATA', DROPPED, { scope: 'session', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: false }],
  ['end of DATA', r(554, 'spam', '5.7.1'), { scope: 'transaction', recipients: 'bounce', destinationFailure: false, nextHost: false, throttle: false }],
  ['end of DATA', TIMEOUT, { scope: 'session', recipients: 'defer', destinationFailure: true, nextHost: false, throttle: false }],
];

describe('failure policy: one decision per row', () => {
  for (const [stage, reply, want] of rows) {
    test(`${stage} ${reply.code} ${reply.enhanced ?? ''} "${reply.text}"`, () => {
      const got = judgeTrouble(stage, reply);
      assert.deepEqual({ scope: got.scope, recipients: got.recipients, destinationFailure: got.destinationFailure, nextHost: got.nextHost, throttle: got.throttle }, want, got.rule);
    });
  }

  test('judgeReply reads the stage from the command the reply answered', () => {
    assert.equal(judgeReply({ ...r(421, 'Too many connections'), command: 'greeting' }).scope, 'host');
    assert.equal(judgeReply({ ...r(421, 'Too many connections'), command: 'end of DATA' }).scope, 'session');
  });
});

describe('what counts as "too many connections"', () => {
  const yes = [
    r(421, 'Too many concurrent SMTP connections from this IP address; please try again later.', '4.7.0'),
    r(421, 'mx.example.test Error: too many connections from 192.0.2.1'),
    r(421, '[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints', '4.7.0'),
    r(450, 'The user you are trying to contact is receiving mail at a rate that prevents additional messages', '4.7.28'),
    r(451, 'Maximum number of connections exceeded'),
  ];
  const no = [
    r(421, 'Service not available, closing transmission channel'),
    r(451, 'Requested action aborted: local error in processing', '4.3.0'),
    r(550, 'Too many connections', '5.7.0'),
    r(250, 'OK'),
  ];
  for (const x of yes) test(`yes: ${x.code} ${x.text}`, () => assert.equal(asksToThrottle(x), true));
  for (const x of no) test(`no: ${x.code} ${x.text}`, () => assert.equal(asksToThrottle(x), false));
});

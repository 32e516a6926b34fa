/**
 * The recipient verification table (inbound/verify-policy), line by line:
 * what a probe's reply says about the address, what is cached for how long,
 * what a cached row means over time, and what the client's RCPT hears.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LastReply } from '../queue/model.js';
import { loadBounceClassifier } from '../config/bounce-rules-file.js';
import { cacheEntry, cachePlan, probeVerdict, rcptAnswer, troubleFinding, verifyKey, type VerifySettings } from './verify-policy.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const S: VerifySettings = {
  waitMs: 6000, unreachable: 'defer', positiveRefreshMs: 7 * DAY, positiveExpireMs: 31 * DAY, negativeRefreshMs: 3 * HOUR, negativeExpireMs: 3 * DAY,
};
const R = (code: number, enhanced: string | undefined, text = 'text'): LastReply => ({ code, ...(enhanced ? { enhanced } : {}), text, host: 'mx[127.0.0.1]:25', command: 'RCPT TO' });

const classifier = loadBounceClassifier([]);

describe('probeVerdict: what a RCPT reply says about the address (classed by the shipped rules)', () => {
  const table: [number, string | undefined, string][] = [
    [250, '2.1.5', 'exists'], [250, undefined, 'exists'], [251, undefined, 'exists'],
    [550, '5.1.1', 'absent'], [553, '5.1.3', 'absent'], [550, '5.1.10', 'absent'], [550, '5.2.1', 'absent'],
    // Without an enhanced code the classifier reads the text: "text" says nothing about the address.
    [550, undefined, 'unknown'], [551, undefined, 'unknown'], [553, undefined, 'unknown'],
    [552, '5.2.2', 'unknown'], [552, undefined, 'unknown'], [554, undefined, 'unknown'],
    [550, '5.7.1', 'unknown'], [554, '5.7.1', 'unknown'], [550, '5.3.0', 'unknown'], [550, '5.4.1', 'unknown'],
    [450, '4.1.1', 'unknown'], [451, '4.3.0', 'unknown'], [452, '4.2.2', 'unknown'], [421, undefined, 'unknown'],
  ];
  for (const [code, enhanced, want] of table) {
    test(`${code} ${enhanced ?? '(no enhanced code)'} → ${want}`, () => {
      const r = R(code, enhanced);
      assert.equal(probeVerdict(r, classifier.classify(r)), want);
    });
  }
});

test('without an enhanced code, a text that says the user is unknown → absent (the classifier reads it)', () => {
  const r = R(550, undefined, 'User unknown in virtual mailbox table');
  assert.equal(probeVerdict(r, classifier.classify(r)), 'absent');
});

describe('the cache: Postfix verify(8) times by default', () => {
  test('exists: refreshed after 7 days, forgotten after 31; absent: after 3 hours and 3 days', () => {
    const p = cacheEntry('a@x.test', 'exists', R(250, '2.1.5'), 1000, S);
    assert.deepEqual([p.refreshAt - 1000, p.expiresAt - 1000], [7 * DAY, 31 * DAY]);
    const n = cacheEntry('a@x.test', 'absent', R(550, '5.1.1'), 1000, S);
    assert.deepEqual([n.refreshAt - 1000, n.expiresAt - 1000], [3 * HOUR, 3 * DAY]);
  });

  test('a row answers until its expiry and asks for a new probe from its refresh time on', () => {
    const n = cacheEntry('a@x.test', 'absent', R(550, '5.1.1'), 0, S);
    assert.deepEqual(cachePlan(undefined, 0), { probe: true });
    assert.deepEqual(cachePlan(n, 3 * HOUR - 1), { answer: n, probe: false });
    assert.deepEqual(cachePlan(n, 3 * HOUR), { answer: n, probe: true });
    assert.deepEqual(cachePlan(n, 3 * DAY), { probe: true });
  });

  test('keys are lower-cased whole', () => assert.equal(verifyKey('Bob@Example.TEST'), 'bob@example.test'));
});

describe('rcptAnswer: what the client hears', () => {
  test('absent → 550 5.1.1 with the remote\'s reply and host', () => {
    const a = rcptAnswer('bob@x.test', { kind: 'verdict', verdict: 'absent', reply: R(550, '5.1.1', '<bob@x.test> User doesn\'t exist') }, S);
    assert.deepEqual(a, {
      kind: 'refuse', code: 550, enhanced: '5.1.1', reason: 'unknown_user',
      text: '<bob@x.test>: Recipient address rejected: undeliverable address: host mx[127.0.0.1]:25 said: 550 5.1.1 <bob@x.test> User doesn\'t exist',
    });
  });

  test('exists → accepted; a permanent refusal not about the address → accepted (delivery decides)', () => {
    assert.deepEqual(rcptAnswer('b@x.test', { kind: 'verdict', verdict: 'exists', reply: R(250, '2.1.5') }, S), { kind: 'accept' });
    assert.equal(rcptAnswer('b@x.test', { kind: 'verdict', verdict: 'unknown', reply: R(554, '5.7.1', 'policy') }, S).kind, 'accept');
  });

  test('pending, unreachable or a 4xx → 450 4.1.1, or accepted with unreachable = "accept"', () => {
    const pending = rcptAnswer('b@x.test', { kind: 'undecided', why: 'address verification in progress' }, S);
    assert.deepEqual(pending, { kind: 'refuse', code: 450, enhanced: '4.1.1', reason: 'unverified', text: '<b@x.test>: Recipient address rejected: unverified address: address verification in progress' });
    const temp = rcptAnswer('b@x.test', { kind: 'verdict', verdict: 'unknown', reply: R(451, '4.3.0', 'try later') }, S);
    assert.equal(temp.kind === 'refuse' && temp.code, 450);
    assert.equal(rcptAnswer('b@x.test', { kind: 'undecided', why: 'x' }, { unreachable: 'accept' }).kind, 'accept');
  });

  test('a remote\'s text is cleaned of control characters and bounded', () => {
    const long = rcptAnswer('b@x.test', { kind: 'verdict', verdict: 'absent', reply: R(550, '5.1.1', `a\r\nb\x00${'x'.repeat(2000)}`) }, S);
    assert.ok(long.kind === 'refuse' && !/[\r\n\0]/.test(long.text) && long.text.length < 450);
  });
});

describe('troubleFinding: a probe without a reply to RCPT TO', () => {
  const ours = (code: number, enhanced: string, text: string): LastReply => ({ code, enhanced, text, host: 'mx[127.0.0.1]:25', command: 'connect', ours: true });
  test('a permanent refusal before RCPT, the destination working (MAIL FROM:<> refused, no SMTPUTF8) → unknown: accepted', () => {
    const f = troubleFinding({ ...R(553, '5.6.7', 'needs SMTPUTF8'), ours: true }, false);
    assert.deepEqual(f, { kind: 'verdict', verdict: 'unknown', reply: { ...R(553, '5.6.7', 'needs SMTPUTF8'), ours: true } });
    assert.equal(rcptAnswer('b@x.test', f, S).kind, 'accept');
  });
  test('the destination failing (even with a 5xx greeting), or a 4xx → undecided, naming the host: 450', () => {
    assert.deepEqual(troubleFinding(ours(451, '4.4.1', 'connect failed (ECONNREFUSED)'), true), { kind: 'undecided', why: 'host mx[127.0.0.1]:25: connect failed (ECONNREFUSED)' });
    assert.deepEqual(troubleFinding(R(554, '5.3.2', 'no service'), true), { kind: 'undecided', why: 'host mx[127.0.0.1]:25: 554 5.3.2 no service' });
    const temp = troubleFinding(R(451, '4.3.0', `busy\r\n${'x'.repeat(1000)}`), false);
    assert.equal(temp.kind, 'undecided');
    assert.ok(temp.kind === 'undecided' && !/[\r\n]/.test(temp.why) && temp.why.length < 400);
    const a = rcptAnswer('b@x.test', temp, S);
    assert.equal(a.kind === 'refuse' && a.code, 450);
  });
});

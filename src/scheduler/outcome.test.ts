import test from 'node:test';
import assert from 'node:assert/strict';
import type { RecipientVerdict } from '../delivery/types.js';
import type { RecipientRow } from '../queue/model.js';
import { outcomeOf, type OutcomeContext } from './outcome.js';

const r = { id: 1, messageId: 'M', address: 'a@b.test', destination: 'b.test', state: 'queued', attempts: 2, nextAttemptAt: 0, delayNotified: false } as RecipientRow;
const ctx = (over: Partial<OutcomeContext> = {}): OutcomeContext => ({
  now: 1_000, bounceRule: false, destinationRetryAt: 60_000, retryAt: (n) => 1_000 + n * 100, ...over,
});
const reply = (code: number) => ({ code, text: 'x' });

test('delivered and failed verdicts are final as given', () => {
  assert.deepEqual(outcomeOf({ kind: 'delivered', reply: reply(250) }, r, ctx()).outcome, { kind: 'delivered', reply: reply(250) });
  const f = outcomeOf({ kind: 'failed', reply: reply(550) }, r, ctx());
  assert.equal(f.status, 'bounced');
  assert.equal(f.outcome.kind, 'failed');
});

test('a recipient deferred: its own next retry, one more attempt counted', () => {
  const o = outcomeOf({ kind: 'deferred', reply: reply(451) }, r, ctx());
  assert.deepEqual(o.outcome, { kind: 'deferred', reply: reply(451), nextAttemptAt: 1_300, countAttempt: true });
  assert.equal(o.status, 'deferred');
});

test('a connection-level failure waits for the destination (its backoff end, or now after a throttle), no attempt counted', () => {
  const v: RecipientVerdict = { kind: 'deferred', reply: reply(421), connectionLevel: true };
  assert.deepEqual(outcomeOf(v, r, ctx()).outcome, { kind: 'deferred', reply: reply(421), nextAttemptAt: 60_000, countAttempt: false });
  assert.deepEqual(outcomeOf(v, r, ctx({ destinationRetryAt: 1_000 })).outcome, { kind: 'deferred', reply: reply(421), nextAttemptAt: 1_000, countAttempt: false });
});

test('a connection-level deferral the destination did not judge: the recipient\'s own retry, counted', () => {
  const v: RecipientVerdict = { kind: 'deferred', reply: reply(421), connectionLevel: true };
  assert.deepEqual(outcomeOf(v, r, ctx({ destinationRetryAt: undefined })).outcome, { kind: 'deferred', reply: reply(421), nextAttemptAt: 1_300, countAttempt: true });
});

test('a bounce rule fails a deferred recipient at once, never a delivered one', () => {
  const o = outcomeOf({ kind: 'deferred', reply: reply(451) }, r, ctx({ bounceRule: true }));
  assert.equal(o.outcome.kind, 'failed');
  assert.equal(o.status, 'bounced');
  assert.equal(outcomeOf({ kind: 'delivered', reply: reply(250) }, r, ctx({ bounceRule: true })).outcome.kind, 'delivered');
});

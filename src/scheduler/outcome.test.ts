import test from 'node:test';
import assert from 'node:assert/strict';
import type { RecipientVerdict } from '../delivery/types.js';
import type { LastReply, RecipientRow } from '../queue/model.js';
import { shippedClassifier } from '../config/bounce-rules-file.js';
import { deliveryLine, outcomeOf, type OutcomeContext } from './outcome.js';

const r = { id: 1, messageId: 'M', address: 'a@b.test', destination: 'b.test', state: 'queued', attempts: 2, nextAttemptAt: 0, delayNotified: false } as RecipientRow;
const ctx = (over: Partial<OutcomeContext> = {}): OutcomeContext => ({
  now: 1_000, bounceRule: false, destinationRetryAt: 60_000, retryAt: (n) => 1_000 + n * 100,
  classify: (x) => shippedClassifier().classify(x), ...over,
});
const reply = (code: number) => ({ code, text: 'x' });
/** The reply as the outcome carries it: with the class the shipped rules give a bare code. */
const classed = (code: number): LastReply => ({ ...reply(code), class: code < 300 ? 'Delivered' : code < 500 ? 'TransientFailure' : 'Uncategorized' });

test('delivered and failed verdicts are final as given', () => {
  assert.deepEqual(outcomeOf({ kind: 'delivered', reply: classed(250) }, r, ctx()).outcome, { kind: 'delivered', reply: classed(250) });
  const f = outcomeOf({ kind: 'failed', reply: reply(550) }, r, ctx());
  assert.equal(f.status, 'bounced');
  assert.equal(f.outcome.kind, 'failed');
});

test('a recipient deferred: its own next retry, one more attempt counted', () => {
  const o = outcomeOf({ kind: 'deferred', reply: classed(451) }, r, ctx());
  assert.deepEqual(o.outcome, { kind: 'deferred', reply: classed(451), nextAttemptAt: 1_300, countAttempt: true });
  assert.equal(o.status, 'deferred');
});

test('a connection-level failure waits for the destination (its backoff end, or now after a throttle), no attempt counted', () => {
  const v: RecipientVerdict = { kind: 'deferred', reply: reply(421), connectionLevel: true };
  assert.deepEqual(outcomeOf(v, r, ctx()).outcome, { kind: 'deferred', reply: classed(421), nextAttemptAt: 60_000, countAttempt: false });
  assert.deepEqual(outcomeOf(v, r, ctx({ destinationRetryAt: 1_000 })).outcome, { kind: 'deferred', reply: classed(421), nextAttemptAt: 1_000, countAttempt: false });
});

test('a connection-level deferral the destination did not judge: the recipient\'s own retry, counted', () => {
  const v: RecipientVerdict = { kind: 'deferred', reply: reply(421), connectionLevel: true };
  assert.deepEqual(outcomeOf(v, r, ctx({ destinationRetryAt: undefined })).outcome, { kind: 'deferred', reply: classed(421), nextAttemptAt: 1_300, countAttempt: true });
});

test('a bounce rule fails a deferred recipient at once, never a delivered one', () => {
  const o = outcomeOf({ kind: 'deferred', reply: classed(451) }, r, ctx({ bounceRule: true }));
  assert.equal(o.outcome.kind, 'failed');
  assert.equal(o.status, 'bounced');
  assert.equal(outcomeOf({ kind: 'delivered', reply: classed(250) }, r, ctx({ bounceRule: true })).outcome.kind, 'delivered');
});

test('every outcome carries the class the classifier gives, and the log line says it', () => {
  const v: RecipientVerdict = { kind: 'failed', reply: { code: 550, enhanced: '5.1.1', text: 'User unknown', command: 'RCPT TO', host: 'mx[127.0.0.1]:25' } };
  const o = outcomeOf(v, r, ctx({ suppression: { enabled: true, ttlMs: 1000 } }));
  assert.equal(o.outcome.reply.class, 'InvalidRecipient');
  assert.equal(o.outcome.kind === 'failed' ? o.outcome.suppressUntil : undefined, 2_000);
  const q = outcomeOf({ kind: 'failed', reply: { code: 552, enhanced: '5.2.2', text: 'Mailbox full', command: 'RCPT TO' } }, r, ctx({ suppression: { enabled: true, ttlMs: 1000 } }));
  assert.equal(q.outcome.reply.class, 'QuotaIssues');
  assert.equal(q.outcome.kind === 'failed' ? q.outcome.suppressUntil : 'x', undefined);
  const batch = { message: { id: 'M', sender: 's@x.test', receivedAt: 0 } } as Parameters<typeof deliveryLine>[0];
  const line = deliveryLine(batch, r, o.verdict, o.outcome, o.status, 1_000);
  assert.equal(line.fields['class'], 'InvalidRecipient');
});

test('the delivery log line names the source address the connection left from ([egress]), and none without one', () => {
  const o = outcomeOf({ kind: 'delivered', reply: classed(250) }, r, ctx());
  const batch = { message: { id: 'M', sender: 's@x.test', receivedAt: 0 }, source: { name: 'ip2', address: '127.0.0.2', warmup: [] } } as unknown as Parameters<typeof deliveryLine>[0];
  const line = deliveryLine(batch, r, o.verdict, o.outcome, o.status, 1_000);
  assert.equal(line.fields['source'], 'ip2');
  assert.equal(line.fields['source_address'], '127.0.0.2');
  const plain = deliveryLine({ ...batch, source: undefined } as Parameters<typeof deliveryLine>[0], r, o.verdict, o.outcome, o.status, 1_000);
  assert.equal(plain.fields['source'], undefined);
});

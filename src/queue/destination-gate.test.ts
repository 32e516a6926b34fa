/**
 * The gate's decision, line by line: closed during a backoff, one probe
 * after it (and none while one is live), open up to the cap when healthy,
 * a learned limit only lowers the cap, never for a suspended destination.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideGrant, NEVER, takeFromBucket } from './destination-gate.js';
import type { DestinationRow } from './model.js';

const none = { count: 0, probing: false, earliestUntil: undefined };
const row = (over: Partial<DestinationRow>): DestinationRow => ({
  key: 'd', health: 'ok', backoffUntil: 0, backoffMs: 0, consecutiveFailures: 0, updatedAt: 0, generation: 1, ...over,
});

describe('decideGrant', () => {
  test('an unknown or healthy destination: go up to the cap, then wait for the earliest slot', () => {
    assert.deepEqual(decideGrant(undefined, none, 0, 2), { kind: 'go' });
    assert.deepEqual(decideGrant(row({}), { count: 1, probing: false, earliestUntil: 500 }, 0, 2), { kind: 'go' });
    assert.deepEqual(decideGrant(row({}), { count: 2, probing: false, earliestUntil: 500 }, 0, 2), { kind: 'wait', reason: 'full', until: 500 });
  });
  test('backoff: wait until it ends, then exactly one probe', () => {
    const b = row({ health: 'backoff', backoffUntil: 61_000, backoffMs: 60_000 });
    assert.deepEqual(decideGrant(b, none, 60_999, 10), { kind: 'wait', reason: 'backoff', until: 61_000 });
    assert.deepEqual(decideGrant(b, none, 61_000, 10), { kind: 'probe' });
    assert.deepEqual(decideGrant(b, { count: 1, probing: true, earliestUntil: 70_000 }, 61_000, 10), { kind: 'wait', reason: 'probing', until: 70_000 });
  });
  test('a learned limit lowers the configured cap, never raises it', () => {
    const limited = row({ limits: { maxConnections: 1 } });
    assert.equal(decideGrant(limited, { count: 1, probing: false, earliestUntil: 9 }, 0, 10).kind, 'wait');
    assert.equal(decideGrant(row({ limits: { maxConnections: 50 } }), { count: 10, probing: false, earliestUntil: 9 }, 0, 10).kind, 'wait');
  });
  test('suspended: never', () => {
    assert.deepEqual(decideGrant(row({ health: 'suspended' }), none, 0, 10), { kind: 'wait', reason: 'suspended', until: NEVER });
  });
});

describe('decideGrant: a learned connection ceiling holds until it expires', () => {
  test('maxConnectionsUntil in the future caps; in the past it does not', () => {
    const live = { count: 2, probing: false, earliestUntil: 9 };
    assert.equal(decideGrant(row({ limits: { maxConnections: 2, maxConnectionsUntil: 100 } }), live, 50, 10).kind, 'wait');
    assert.equal(decideGrant(row({ limits: { maxConnections: 2, maxConnectionsUntil: 100 } }), live, 100, 10).kind, 'go');
  });
});

describe('decideGrant: reply rules in force on the row hold for every node until they end', () => {
  const rule = (action: 'suspend' | 'set', until: number, maxConnections?: number) => ({
    index: 0, action, rule: 'rules[0]', until, since: 0, reply: '451 4.7.1 slow down', ...(maxConnections !== undefined ? { maxConnections } : {}),
  });
  test('a suspend: wait until it ends, then go', () => {
    const r = row({ limits: { rules: [rule('suspend', 600_000)] } });
    assert.deepEqual(decideGrant(r, none, 599_999, 10), { kind: 'wait', reason: 'suspended', until: 600_000 });
    assert.deepEqual(decideGrant(r, none, 600_000, 10), { kind: 'go' });
  });
  test('a set rule\'s max_connections caps while in force', () => {
    const r = row({ limits: { rules: [rule('set', 600_000, 1)] } });
    const one = { count: 1, probing: false, earliestUntil: 9 };
    assert.equal(decideGrant(r, one, 0, 10).kind, 'wait');
    assert.equal(decideGrant(r, one, 600_000, 10).kind, 'go');
  });
});

describe('takeFromBucket (the shared rate, both queues)', () => {
  const rate = { count: 2, perMs: 60_000 };
  test('starts full; each take costs one token; empty says when the next one is there', () => {
    const first = takeFromBucket(undefined, 0, rate);
    assert.deepEqual(first, { bucket: { tokens: 1, at: 0 }, result: { ok: true, until: 0 } });
    const second = takeFromBucket(first.bucket, 0, rate);
    assert.deepEqual(second.result, { ok: true, until: 0 });
    const third = takeFromBucket(second.bucket, 0, rate);
    assert.deepEqual(third, { bucket: { tokens: 0, at: 0 }, result: { ok: false, until: 30_000 } });
  });
  test('refills with the time passed, never above its size', () => {
    assert.deepEqual(takeFromBucket({ tokens: 0, at: 0 }, 15_000, rate), { bucket: { tokens: 0.5, at: 15_000 }, result: { ok: false, until: 30_000 } });
    assert.deepEqual(takeFromBucket({ tokens: 0, at: 0 }, 30_000, rate).result, { ok: true, until: 30_000 });
    assert.equal(takeFromBucket({ tokens: 0, at: 0 }, 86_400_000, rate).bucket.tokens, 1);
    assert.equal(takeFromBucket({ tokens: 1, at: 1_000 }, 0, rate).bucket.tokens, 0, 'a clock behind the bucket adds nothing');
  });
});

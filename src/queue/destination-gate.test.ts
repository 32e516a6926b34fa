/**
 * The gate's decision, line by line: closed during a backoff, one probe
 * after it (and none while one is live), open up to the cap when healthy,
 * a learned limit only lowers the cap, never for a suspended destination.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideGrant, NEVER } from './destination-gate.js';
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

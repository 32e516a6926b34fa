/**
 * inbound/verifier over a real SQLite queue (cache and gate) with a scripted
 * probe and a settable clock: a stale answer serves while one probe refreshes
 * it; a probe that outlives the RCPT's wait answers the next RCPT from the
 * cache; a destination in backoff gets no probe; a route without verify is
 * never probed.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { ProbeOutcome } from '../delivery/smtp-transport.js';
import type { LastReply } from '../queue/model.js';
import { openSqliteQueue, type SqliteQueue } from '../queue/sqlite/store.js';
import { Verifier } from './verifier.js';
import { loadBounceClassifier } from '../config/bounce-rules-file.js';
import { parseConfig } from '../config/load.js';
import { Destinations } from '../destination/service.js';
import type { VerifySettings } from './verify-policy.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2030, 0, 1);
const SETTINGS: VerifySettings = { waitMs: 200, unreachable: 'defer', positiveRefreshMs: 7 * DAY, positiveExpireMs: 31 * DAY, negativeRefreshMs: 3 * HOUR, negativeExpireMs: 3 * DAY };
const ROUTES = { 'v.test': { hosts: ['127.0.0.1:2'], verify: 'probe' as const }, 'plain.test': '127.0.0.1:3' };
const KEY = 'route:127.0.0.1:2';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function setup(probe: (domain: string, address: string) => Promise<ProbeOutcome>, rate?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-verifier-'));
  dirs.push(dir);
  const clock = { now: T0 };
  const queue: SqliteQueue = await openSqliteQueue({ dataDir: dir, clock: () => clock.now });
  const calls: string[] = [];
  const log = pino({ level: 'silent' });
  const config = parseConfig({ delivery: { destination_backoff: '1m', destination_backoff_max: '1h', ...(rate ? { destination_rate: rate } : {}) } });
  const destinations = new Destinations({ gate: queue.gate, recipients: queue.recipients, config: () => config, log, clock: () => clock.now, node: 'n1' });
  const verifier = new Verifier({
    cache: queue.verifications, destinations, clock: () => clock.now, log,
    probe: (d, a) => { calls.push(a); return probe(d, a); },
    routes: () => ROUTES, settings: () => SETTINGS,
    classify: (r) => loadBounceClassifier([]).classify(r),
  });
  return { queue, clock, verifier, calls };
}

const R = (code: number, enhanced: string, text: string): LastReply => ({ code, enhanced, text, host: 'h[127.0.0.1]:2', command: 'RCPT TO' });
const answered = (reply: LastReply): ProbeOutcome => ({ kind: 'answered', reply, closed: Promise.resolve() });

describe('Verifier', () => {
  test('a route without verify is never probed', async () => {
    const { verifier, calls, queue } = await setup(async () => answered(R(550, '5.1.1', 'no')));
    assert.deepEqual(await verifier.check('a@plain.test', 'plain.test'), { kind: 'accept' });
    assert.deepEqual(await verifier.check('a@elsewhere.test', 'elsewhere.test'), { kind: 'accept' });
    assert.deepEqual(calls, []);
    await queue.close();
  });

  test('a stale answer serves while one probe refreshes it', async () => {
    let exists = false;
    const { verifier, calls, clock, queue } = await setup(async () => answered(exists ? R(250, '2.1.5', 'ok') : R(550, '5.1.1', 'no such user')));
    assert.equal((await verifier.check('Bob@v.test', 'v.test')).kind, 'refuse');
    assert.equal((await verifier.check('bob@v.test', 'v.test')).kind, 'refuse', 'fresh: from the cache');
    assert.equal(calls.length, 1);
    exists = true;
    clock.now += 3 * HOUR;
    assert.equal((await verifier.check('bob@v.test', 'v.test')).kind, 'refuse', 'stale: still the cached answer …');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls.length, 2, '… while one probe refreshes it');
    assert.deepEqual(await verifier.check('bob@v.test', 'v.test'), { kind: 'accept' });
    assert.equal((await queue.verifications.getVerification('bob@v.test', clock.now))?.verdict, 'exists');
    await queue.close();
  });

  test('a probe slower than the wait: 450 "in progress", and the next RCPT hears its answer from the cache', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const { verifier, calls, queue } = await setup(async () => { await gate; return answered(R(550, '5.1.1', 'no such user')); });
    const first = await verifier.check('slow@v.test', 'v.test');
    assert.equal(first.kind === 'refuse' && first.code, 450);
    assert.match(first.kind === 'refuse' ? first.text : '', /address verification in progress/);
    release();
    await new Promise((r) => setTimeout(r, 50));
    const second = await verifier.check('slow@v.test', 'v.test');
    assert.equal(second.kind === 'refuse' && second.code, 550);
    assert.equal(calls.length, 1);
    await queue.close();
  });

  test('a destination in backoff gets no probe: 450 at once, naming the backoff', async () => {
    const { verifier, calls, queue, clock } = await setup(async () => answered(R(250, '2.1.5', 'ok')));
    await queue.gate.transition(KEY, 0, { key: KEY, health: 'backoff', backoffUntil: clock.now + HOUR, backoffMs: HOUR, consecutiveFailures: 3, lastError: 'down', updatedAt: clock.now });
    const a = await verifier.check('x@v.test', 'v.test');
    assert.equal(a.kind === 'refuse' && a.code, 450);
    assert.match(a.kind === 'refuse' ? a.text : '', /destination in backoff until/);
    assert.deepEqual(calls, []);
    await queue.close();
  });

  test('a probe that cannot connect puts the destination into backoff (one step); the next RCPT gets no probe', async () => {
    const lost: ProbeOutcome = { kind: 'trouble', reply: { code: 421, enhanced: '4.4.2', text: 'connection lost', host: 'h[127.0.0.1]:2', command: 'connect' }, destinationFailure: true, closed: Promise.resolve() };
    const { verifier, calls, queue, clock } = await setup(async () => lost);
    const a = await verifier.check('y@v.test', 'v.test');
    assert.equal(a.kind === 'refuse' && a.code, 450);
    const row = await queue.gate.getDestination(KEY);
    assert.equal(row?.health, 'backoff');
    assert.equal(row?.backoffUntil, clock.now + 60_000, 'delivery.destination_backoff, the first step');
    const b = await verifier.check('z@v.test', 'v.test');
    assert.match(b.kind === 'refuse' ? b.text : '', /destination in backoff until/);
    assert.deepEqual(calls, ['y@v.test']);
    await queue.close();
  });

  test('a destination\'s message rate counts probes too: past it, 450 without a probe', async () => {
    const { verifier, calls, queue } = await setup(async () => answered(R(250, '2.1.5', 'ok')), '2/h');
    const answers = [];
    for (const a of ['r1', 'r2', 'r3']) answers.push(await verifier.check(`${a}@v.test`, 'v.test'));
    assert.deepEqual(answers.map((a) => (a.kind === 'refuse' ? a.code : 250)), [250, 250, 450]);
    assert.match(answers[2]!.kind === 'refuse' ? answers[2]!.text : '', /message rate is spent/);
    assert.deepEqual(calls, ['r1@v.test', 'r2@v.test']);
    await queue.close();
  });
});

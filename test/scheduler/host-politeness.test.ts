/**
 * The host, not the domain, is the unit of politeness (I5 across domains,
 * I6, adaptive concurrency). Twenty domains whose only MX is one host share
 * one destination (`mx:mx.shared.test`): one backoff, one connection cap, one
 * pool of connections. A recipient limit is learned once; a remote that says
 * "too many connections" gets fewer.
 *
 * Real DNS on loopback (test/support/dns-server) answers the MX questions;
 * the remote is test/support/remote-smtp over real sockets; only the time
 * Halcyon reads is fake (the scheduler harness).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startApp } from '../../src/app.js';
import { formatDestinations } from '../../src/cli/format.js';
import { startDnsServer, type TestDnsServer, type Zone } from '../support/dns-server.js';
import { startRemote, type Remote, type RemoteOptions } from '../support/remote-smtp.js';
import { enqueueMany, probeSchedule, simulate, startHarness, type SchedulerHarness } from './harness.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const MX = 'mx.shared.test';
const KEY = `mx:${MX}`;
const DOMAINS = Array.from({ length: 20 }, (_, i) => `d${i + 1}.test`);

function zoneFor(domains: readonly string[]): Zone {
  const z: Zone = { [MX]: { A: ['127.0.0.1'] } };
  // An hour, as large providers publish: the host set outlives the backoff steps.
  for (const d of domains) z[d] = { MX: [{ preference: 10, exchange: MX }], TTL: 3600 };
  return z;
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

/** A harness whose remote domains are delivered by MX (no routes), through the loopback DNS server. */
async function setup(remoteOpts: RemoteOptions, delivery: Record<string, unknown> = {}, domains: readonly string[] = DOMAINS): Promise<{ h: SchedulerHarness; remote: Remote; dns: TestDnsServer }> {
  const dns = await startDnsServer(zoneFor(domains));
  cleanup.push(() => dns.close());
  const remote = await startRemote(remoteOpts);
  cleanup.push(() => remote.close());
  const h = await startHarness(remote.port, { port: remote.port, connection_idle_timeout: '1m', ...delivery }, { routes: {}, dns: { servers: [dns.address], timeout: '2s' } });
  cleanup.push(() => h.stop());
  return { h, remote, dns };
}

async function enqueueAcross(h: SchedulerHarness, domains: readonly string[], perDomain: number, perMessage = 1): Promise<void> {
  for (const domain of domains) await enqueueMany(h.app.store, { count: perDomain, destination: domain, domain, perMessage, receivedAt: h.clock.now() });
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1);

describe('destinations are MX host sets', () => {
  test('20 domains → one MX host that refuses connections: connections over 24 h are one destination\'s backoff steps', async () => {
    const { h, remote } = await setup({ refuse: true }, { destination_backoff: '1m', destination_backoff_max: '1h', delay_warning_after: '2d' });
    const start = h.clock.now();
    await enqueueAcross(h, DOMAINS, 2);

    const log = await simulate(h, start + DAY, () => remote.connections.length, 400);
    assert.equal(h.clock.now(), start + DAY, `simulation stopped early after ${log.length} passes`);

    const expected = probeSchedule(MINUTE, 60 * MINUTE, DAY);
    const connecting = log.filter((p) => p.attempts > 0);
    assert.deepEqual(connecting.map((p) => (p.at - start) / MINUTE), expected.map((t) => t / MINUTE), 'passes that connected, in minutes since the first');
    // The first wave is the destination's initial concurrency (5), not 20 domains' worth; then one probe per step.
    assert.ok(connecting[0]!.attempts <= 5, `first wave: ${connecting[0]!.attempts}`);
    for (const p of connecting.slice(1)) assert.equal(p.attempts, 1, `pass at +${(p.at - start) / MINUTE} min opened ${p.attempts}`);
    assert.ok(remote.connections.length <= expected.length + 4, `${remote.connections.length} connections in a day`);

    // One destination row for all twenty domains, in backoff at the cap; nothing lost or bounced.
    const dest = (await h.app.store.gate.listDestinations()).find((d) => d.key === KEY);
    assert.equal(dest?.health, 'backoff');
    assert.equal(dest?.consecutiveFailures, expected.length);
    assert.deepEqual(h.app.destinations.view.routeKeysOf(KEY), [...DOMAINS].sort());
    const rcpts = (await h.app.store.recipients.listMessages({})).flatMap((m) => m.recipients);
    assert.equal(rcpts.length, 40);
    assert.ok(rcpts.every((r) => r.state === 'deferred' || r.state === 'queued'), 'every recipient still waiting');

    // `halcyon destinations --json`: one entry for the host set, its domains and all 40 recipients.
    const list = await h.app.admin.destinations();
    const info = list.find((d) => d.key === KEY);
    assert.equal(info?.health, 'backoff');
    assert.equal(info?.queued, 40);
    assert.deepEqual(info?.domains, [...DOMAINS].sort());
    assert.ok(!list.some((d) => DOMAINS.includes(d.key)), 'a domain listed as a destination of its own');
  });

  test('20 domains → one slow MX host, cap 2: never more than 2 sessions, every message once, connections reused across domains', async () => {
    const { h, remote } = await setup({ delayMs: 15 }, { max_connections_per_destination: 2 });
    const start = h.clock.now();
    await enqueueAcross(h, DOMAINS, 2);

    await simulate(h, start + 10 * MINUTE, () => remote.connections.length, 50);

    assert.ok(remote.maxConcurrent <= 2, `${remote.maxConcurrent} sessions at once`);
    const delivered = remote.transactions.flatMap((t) => t.rcpts);
    assert.equal(delivered.length, 40);
    assert.equal(new Set(delivered).size, 40, 'a recipient was delivered twice');
    assert.ok(remote.connections.length <= 2, `${remote.connections.length} connections for 40 messages`);
    const domainsPerConnection = new Map<number, Set<string>>();
    for (const t of remote.transactions) {
      const set = domainsPerConnection.get(t.connection) ?? new Set<string>();
      for (const r of t.rcpts) set.add(domainOf(r));
      domainsPerConnection.set(t.connection, set);
    }
    assert.ok([...domainsPerConnection.values()].some((s) => s.size >= 10), `domains per connection: ${[...domainsPerConnection.values()].map((s) => s.size)}`);
  });

  test('destination_by = "domain" keeps one destination per domain', async () => {
    const { h } = await setup({}, { destination_by: 'domain' }, DOMAINS.slice(0, 2));
    assert.equal((await h.app.destinations.destinationsOf(['d1.test'])).get('d1.test'), 'd1.test');
  });
});

describe('I6: a recipient limit is learned once', () => {
  test('the second message to a destination that limits at 3 opens with 3 recipients: one transaction per 3, no refused RCPT', async () => {
    const { h, remote } = await setup({ rcptLimit: { max: 3, reply: '452 4.5.3 Too many recipients' }, extensions: { pipelining: true, enhancedStatusCodes: true } }, {}, ['one.test']);
    const start = h.clock.now();
    await enqueueMany(h.app.store, { count: 1, destination: 'one.test', domain: 'one.test', perMessage: 9, receivedAt: start });
    await simulate(h, start + MINUTE, () => remote.connections.length, 20);
    const first = remote.transactions.length;
    assert.equal(remote.transactions.flatMap((t) => t.rcpts).length, 9);
    // The first message met the limit once (one transaction with refused RCPTs), then went on 3 at a time.
    assert.deepEqual(remote.transactions.map((t) => t.rcpts.length), [3, 3, 3]);
    assert.equal(remote.transactions.filter((t) => t.rcptReplies.some((r) => r.reply.startsWith('452'))).length, 1);

    await enqueueMany(h.app.store, { count: 1, destination: 'one.test', domain: 'one.test', perMessage: 9, receivedAt: h.clock.now(), sender: 'second@local.test' });
    await simulate(h, h.clock.now() + MINUTE, () => remote.connections.length, 20);
    const second = remote.transactions.slice(first);
    assert.deepEqual(second.map((t) => t.rcptReplies.length), [3, 3, 3], 'RCPTs per transaction of the second message');
    assert.ok(second.every((t) => t.rcptReplies.every((r) => r.reply.startsWith('250'))), 'a RCPT of the second message was refused');
    assert.equal(h.app.destinations.view.politeness(KEY).learnedRecipients?.max, 3);
    const info = (await h.app.admin.destinations()).find((d) => d.key === KEY);
    assert.equal(info?.politeness?.recipientLimit, 3);
    assert.equal(info?.politeness?.learnedRecipients?.reply, '452 4.5.3 Too many recipients');
  });
});

describe('what is learned is on the gate\'s row: every node, and the next start, know it', () => {
  test('after a restart (memory gone), the next message to a destination that limited at 3 still opens with 3 recipients', async () => {
    const { h, remote } = await setup({ rcptLimit: { max: 3, reply: '452 4.5.3 Too many recipients' }, extensions: { pipelining: true, enhancedStatusCodes: true } }, {}, ['one.test']);
    await enqueueMany(h.app.store, { count: 1, destination: 'one.test', domain: 'one.test', perMessage: 9, receivedAt: h.clock.now() });
    await simulate(h, h.clock.now() + MINUTE, () => remote.connections.length, 20);
    assert.equal((await h.app.store.gate.getDestination(KEY))?.limits?.maxRecipients, 3);

    await h.app.stop(2_000);
    const app = await startApp(h.app.config, { clock: h.clock.now, manualScheduler: true, random: () => 0.5, logger: pino({ level: 'silent' }) });
    cleanup.push(() => app.stop(2_000));
    const again: SchedulerHarness = { ...h, app };
    const first = remote.transactions.length;
    await enqueueMany(app.store, { count: 1, destination: 'one.test', domain: 'one.test', perMessage: 9, receivedAt: h.clock.now(), sender: 'second@local.test' });
    await simulate(again, h.clock.now() + MINUTE, () => remote.connections.length, 20);
    const second = remote.transactions.slice(first);
    assert.deepEqual(second.map((t) => t.rcptReplies.length), [3, 3, 3], 'RCPTs per transaction after the restart');
    assert.ok(second.every((t) => t.rcptReplies.every((r) => r.reply.startsWith('250'))), 'a RCPT was refused after the restart');
    assert.equal(app.destinations.view.politeness(KEY).learnedRecipients?.max, 3);
  });
});

describe('the read-only view', () => {
  test('listing destinations (a dashboard GET) shows what another node put on the row, and changes nothing the scheduler uses', async () => {
    const { h } = await setup({}, {}, ['one.test']);
    const now = h.clock.now();
    // Another node learned a recipient limit of 3 and a connection ceiling of 2 (on the shared row).
    await h.app.store.gate.putLimits(KEY, { maxRecipients: 3, maxRecipientsUntil: now + 3_600_000, recipientsReply: '452 4.5.3 Too many recipients',
      maxConnections: 2, maxConnectionsUntil: now + 3_600_000, connectionsReply: '421 4.7.0 Too many connections' }, now);
    const before = h.app.destinations.view.politeness(KEY);
    const listed = (await h.app.admin.destinations()).find((d) => d.key === KEY)?.politeness;
    assert.deepEqual([listed?.recipientLimit, listed?.learnedConnections?.max], [3, 2], 'the listing shows the row\'s limits');
    assert.deepEqual(h.app.destinations.view.politeness(KEY), before, 'the scheduler\'s own view is unchanged by the listing');
    assert.equal(h.app.destinations.recipientLimit(KEY), 100, 'what the next batch carries is unchanged by the listing');
    assert.deepEqual(h.app.destinations.view.known(), [], 'no record made by the listing');
  });
});

describe('adaptive concurrency', () => {
  test('a remote that answers "421 4.7.0 Too many connections" above 3 sessions: settles at ≤ 3, drains without further 421s, no backoff', async () => {
    const { h, remote } = await setup({ delayMs: 10, maxSessions: { max: 3, reply: '421 4.7.0 Too many connections, try again later' } });
    const start = h.clock.now();
    await enqueueAcross(h, DOMAINS, 2);

    await h.app.qmgr.runOnce();
    const refusedInFirstWave = remote.connections.filter((c) => c.overLimit).length;
    assert.ok(refusedInFirstWave >= 1, 'the first wave (initial concurrency 5) should have met the limit');
    assert.ok(h.app.destinations.view.politeness(KEY).connectionLimit <= 3, `limit after the first wave: ${h.app.destinations.view.politeness(KEY).connectionLimit}`);

    await simulate(h, start + 10 * MINUTE, () => remote.connections.length, 50);
    assert.equal(remote.connections.filter((c) => c.overLimit).length, refusedInFirstWave, 'a 421 after the limit was learned');
    const delivered = remote.transactions.flatMap((t) => t.rcpts);
    assert.equal(delivered.length, 40);
    assert.equal(new Set(delivered).size, 40);
    assert.ok(h.app.destinations.view.politeness(KEY).connectionLimit <= 3);
    const list = await h.app.admin.destinations();
    const info = list.find((d) => d.key === KEY);
    assert.equal(info?.politeness?.learnedConnections?.max, h.app.destinations.view.politeness(KEY).connectionLimit);
    assert.equal(info?.politeness?.connectionLimit, h.app.destinations.view.politeness(KEY).connectionLimit);
    assert.equal(info?.politeness?.learnedConnections?.reply, '421 4.7.0 Too many connections, try again later');
    assert.match(formatDestinations(list, h.clock.now()), /learned: at most [123] connections for 23h5\dm \(421 4\.7\.0 Too many connections/);
    // A throttle is not a failure: the destination never went into backoff, no recipient spent a retry step.
    const row = await h.app.store.gate.getDestination(KEY);
    assert.ok(row === undefined || row.health === 'ok', `destination ${row?.health}`);
    const { byState } = await h.app.store.recipients.counts();
    assert.equal(byState.deferred + byState.queued + byState.inflight + byState.failed, 0, JSON.stringify(byState));
  });
});

describe('adaptive concurrency at MAIL FROM', () => {
  test('a remote that answers MAIL FROM with "451 4.7.0 Too many concurrent SMTP connections" above 3 sessions: the session ends, the destination settles at ≤ 3, drains, no backoff', async () => {
    const reply = '451 4.7.0 Too many concurrent SMTP connections from this IP';
    const { h, remote } = await setup({ delayMs: 10, maxSessions: { max: 3, reply, at: 'MAIL FROM' } });
    const start = h.clock.now();
    await enqueueAcross(h, DOMAINS, 2);

    await h.app.qmgr.runOnce();
    const refused = () => remote.connections.filter((c) => c.overLimit);
    const refusedInFirstWave = refused().length;
    assert.ok(refusedInFirstWave >= 1, 'the first wave (initial concurrency 5) should have met the limit');
    assert.ok(refused().every((c) => !c.open), 'a connection told "too many" at MAIL FROM is left');
    assert.ok(h.app.destinations.view.politeness(KEY).connectionLimit <= 3, `limit after the first wave: ${h.app.destinations.view.politeness(KEY).connectionLimit}`);

    await simulate(h, start + 10 * MINUTE, () => remote.connections.length, 50);
    assert.equal(refused().length, refusedInFirstWave, 'a refusal after the limit was learned');
    const delivered = remote.transactions.flatMap((t) => t.rcpts);
    assert.equal(delivered.length, 40);
    assert.equal(new Set(delivered).size, 40);
    const info = (await h.app.admin.destinations()).find((d) => d.key === KEY);
    assert.equal(info?.politeness?.learnedConnections?.reply, reply);
    assert.ok((info?.politeness?.connectionLimit ?? Infinity) <= 3);
    const row = await h.app.store.gate.getDestination(KEY);
    assert.ok(row === undefined || row.health === 'ok', `destination ${row?.health}`);
    const { byState } = await h.app.store.recipients.counts();
    assert.equal(byState.deferred + byState.queued + byState.inflight + byState.failed, 0, JSON.stringify(byState));
  });
});

describe('reply rules ([[delivery.rules]])', () => {
  const ROUTED = 'routed.test';
  /** A routed destination (rules apply to every kind of key) with one rule; `remote` answers as given. */
  async function withRule(rule: Record<string, unknown>, remoteOpts: RemoteOptions, extra: Record<string, unknown> = {}): Promise<{ h: SchedulerHarness; remote: Remote; key: string }> {
    const remote = await startRemote(remoteOpts);
    cleanup.push(() => remote.close());
    const h = await startHarness(remote.port, { rules: [rule], retry_initial: '5m', connection_idle_timeout: '1m' }, { routes: { [ROUTED]: `127.0.0.1:${remote.port}` }, ...extra });
    cleanup.push(() => h.stop());
    return { h, remote, key: `route:127.0.0.1:${remote.port}` };
  }
  /** MAIL FROM commands the remote saw: attempts, whether on a new connection or a pooled one. */
  const mails = (remote: Remote) => remote.commands.filter((c) => /^MAIL FROM/i.test(c.line)).length;
  const enqueue = (h: SchedulerHarness, key: string, count: number) =>
    enqueueMany(h.app.store, { count, destination: key, domain: ROUTED, receivedAt: h.clock.now() });

  test('suspend: a matching MAIL FROM reply stops all connections for `for`; each triggering reply is one rule_triggered event', async () => {
    // A sink that never answers: the events stay in the outbox, where they are counted.
    const sink = { events: { webhooks: [{ name: 'rules', url: 'http://127.0.0.1:9/', secret: 's', events: ['rule_triggered'] }] } };
    const { h, remote, key } = await withRule({ match: 'slow down', action: 'suspend', for: '30m' }, { mailReply: '451 4.7.1 Please slow down' }, sink);
    const start = h.clock.now();
    await enqueue(h, key, 3);
    const log = await simulate(h, start + 29 * MINUTE, () => mails(remote), 50);
    // The first pass's sessions met the reply; nothing more for 30 minutes although the recipients' own retry (5 m) came due.
    const attempting = log.filter((p) => p.attempts > 0);
    assert.deepEqual(attempting.map((p) => p.at - start), [0], JSON.stringify(attempting));
    assert.ok(h.clock.now() - start >= 29 * MINUTE);
    const view = h.app.destinations.view.politeness(key);
    assert.equal(view.rules.length, 1);
    assert.equal(view.rules[0]!.action, 'suspend');
    assert.equal(view.rules[0]!.reply, '451 4.7.1 Please slow down');
    const list = await h.app.admin.destinations();
    assert.deepEqual(list.find((d) => d.key === key)?.politeness?.rules.map((r) => [r.action, r.reply]), [['suspend', '451 4.7.1 Please slow down']]);
    assert.match(formatDestinations(list, h.clock.now()), /rule: rules\[0\] action=suspend .* — suspend for \d+m, triggered by "451 4\.7\.1 Please slow down"/);
    // One MAIL FROM per transaction met the reply: as many rule_triggered events, written with the deferrals.
    assert.deepEqual((await h.app.store.events.outboxDepth()).map((d) => [d.sink, d.depth]), [['rules', mails(remote)]]);
    remote.setOptions({ mailReply: '250 2.1.0 OK' });
    await simulate(h, start + 40 * MINUTE, () => mails(remote), 50);
    assert.equal(remote.transactions.length, 3);
  });

  test('suspend is on the gate\'s row: a restart (a fresh app on the same data_dir) honours it until it ends and lists it', async () => {
    const { h, remote, key } = await withRule({ match: 'slow down', action: 'suspend', for: '30m' }, { mailReply: '451 4.7.1 Please slow down' });
    const start = h.clock.now();
    await enqueue(h, key, 3);
    await h.app.qmgr.runOnce();
    const stored = (await h.app.store.gate.getDestination(key))?.limits?.rules ?? [];
    assert.deepEqual(stored.map((r) => [r.action, r.reply, r.until]), [['suspend', '451 4.7.1 Please slow down', start + 30 * MINUTE]]);

    await h.app.stop(2_000);
    remote.setOptions({ mailReply: '250 2.1.0 OK' });
    const seen = remote.connections.length;
    const app = await startApp(h.app.config, { clock: h.clock.now, manualScheduler: true, random: () => 0.5, logger: pino({ level: 'silent' }) });
    cleanup.push(() => app.stop(2_000));
    const again: SchedulerHarness = { ...h, app };
    // The recipients' own retry (5 m) comes due, but no connection while the suspension holds.
    await simulate(again, start + 29 * MINUTE, () => remote.connections.length, 50);
    assert.equal(remote.connections.length, seen, 'a connection while the suspension held');
    // `halcyon destinations --json` on the new instance shows the rule and the reply that triggered it.
    const listed = (await app.admin.destinations()).find((d) => d.key === key)?.politeness?.rules ?? [];
    assert.deepEqual(listed.map((r) => [r.action, r.reply]), [['suspend', '451 4.7.1 Please slow down']]);
    await simulate(again, start + 40 * MINUTE, () => remote.connections.length, 50);
    assert.equal(remote.transactions.length, 3, 'delivered once the suspension ended');
  });

  test('suspend: a reply that does not match leaves the recipients to their own retry', async () => {
    const { h, remote, key } = await withRule({ match: 'slow down', action: 'suspend', for: '30m' }, { mailReply: '451 4.3.0 Local error' });
    const start = h.clock.now();
    await enqueue(h, key, 1);
    await simulate(h, start + 12 * MINUTE, () => mails(remote), 50);
    assert.ok(mails(remote) >= 2, `${mails(remote)} attempt(s): the 5 m retry did not happen`);
    assert.deepEqual(h.app.destinations.view.politeness(key).rules, []);
  });

  test('set: a matching RCPT reply caps the destination\'s connections at max_connections; a non-matching one does not', async () => {
    let first = true;
    const { h, remote, key } = await withRule({ match: '4\\.7\\.28 .*rate', action: 'set', max_connections: 1, for: '1h' }, {
      delayMs: 10, rcpt: () => (first ? ((first = false), '450 4.7.28 Receiving mail at a rate that prevents additional messages') : undefined),
    });
    await enqueue(h, key, 1);
    await h.app.qmgr.runOnce();
    assert.equal(h.app.destinations.view.politeness(key).connectionLimit, 1);
    assert.equal(h.app.destinations.view.politeness(key).rules[0]?.reply, '450 4.7.28 Receiving mail at a rate that prevents additional messages');
    remote.clear();
    await enqueue(h, key, 12);
    await simulate(h, h.clock.now() + MINUTE, () => remote.connections.length, 50);
    assert.equal(remote.transactions.length, 12);
    assert.equal(remote.maxConcurrent, 1, 'sessions at once while the rule is in force');

    const other = await withRule({ match: '4\\.7\\.28 .*rate', action: 'set', max_connections: 1, for: '1h' }, { rcpt: () => '450 4.2.1 Mailbox busy' });
    await enqueue(other.h, other.key, 1);
    await other.h.app.qmgr.runOnce();
    assert.equal(other.h.app.destinations.view.politeness(other.key).connectionLimit, 5);
    assert.deepEqual(other.h.app.destinations.view.politeness(other.key).rules, []);
  });

  test('bounce: a matching temporary RCPT reply fails the recipient at once; a non-matching one is deferred', async () => {
    const { h, remote, key } = await withRule({ match: 'user unknown in virtual mailbox table', action: 'bounce' }, {
      rcpt: (rcpt) => (rcpt.startsWith('user0-') ? '450 4.1.1 <x>: Recipient address rejected: User unknown in virtual mailbox table' : '450 4.2.1 Mailbox busy'),
    });
    await enqueue(h, key, 2);
    await h.app.qmgr.runOnce();
    assert.equal(mails(remote), 2, 'one attempt per message');
    const rcpts = (await h.app.store.recipients.listMessages({ domain: ROUTED })).flatMap((m) => m.recipients);
    const byAddr = new Map(rcpts.map((r) => [r.address.split('@')[0]!, r]));
    assert.equal(byAddr.get('user0-0')?.state, 'failed');
    assert.equal(byAddr.get('user1-0')?.state, 'deferred');
  });
});

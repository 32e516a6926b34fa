/**
 * I5 — no storms. Thousands of messages queued for a destination that fails
 * at the connection level (refuses connections, greets with 421, never
 * greets) must cost that destination connections at the pace of its backoff
 * schedule — 1 m doubling to 1 h — over a simulated day, however many
 * messages wait. Waiting must not burn the recipients' own retry steps, and
 * nothing may be lost, failed or expired in that day.
 *
 * Time is a fake clock jumped to each next due moment; connections are real
 * (to test/support/remote-smtp, or to a closed port).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRemote, type Remote, type RemoteOptions } from '../support/remote-smtp.js';
import {
  closedPort, enqueueMany, probeSchedule, REMOTE_DOMAIN, simulate, startHarness,
  type PassRecord, type SchedulerHarness,
} from './harness.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const PER_DESTINATION = 10; // the default max_connections_per_destination: the first wave's size

interface Scenario {
  readonly name: string;
  readonly messages: number;
  /** A remote in this mode; undefined → a closed port, counted by the transport. */
  readonly remote?: RemoteOptions;
  readonly greetingTimeout?: string;
  /** Extra delivery settings. */
  readonly delivery?: Record<string, unknown>;
}

const scenarios: Scenario[] = [
  // Delay DSNs (after 4 h) are exercised by the smaller scenarios; 10,000 of them would only slow this one down.
  { name: 'refuses every connection (closes before greeting)', messages: 10_000, remote: { refuse: true }, delivery: { delay_warning_after: '2d' } },
  { name: 'has nothing listening (connection refused)', messages: 1_000 },
  { name: 'answers 421 to every greeting', messages: 1_000, remote: { banner: '421 4.3.2 Service not available, try later' } },
  { name: 'accepts and never greets (greeting timeout)', messages: 1_000, remote: { hang: true }, greetingTimeout: '300ms' },
];

describe('I5: a failing destination is probed at its backoff pace, not per message', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  for (const s of scenarios) {
    test(`${s.messages} messages, a host that ${s.name}`, async () => {
      let remote: Remote | undefined;
      let port: number;
      if (s.remote) {
        remote = await startRemote(s.remote);
        cleanup.push(() => remote!.close());
        port = remote.port;
      } else {
        port = await closedPort();
      }
      const h: SchedulerHarness = await startHarness(port, {
        destination_backoff: '1m', destination_backoff_max: '1h', max_connections_per_destination: PER_DESTINATION,
        ...(s.greetingTimeout ? { timeouts: { greeting: s.greetingTimeout } } : {}),
        ...s.delivery,
      });
      cleanup.push(() => h.stop());
      const start = h.clock.now();
      await enqueueMany(h.app.store, { count: s.messages, destination: h.destination, receivedAt: start });

      const attempts = remote ? () => remote!.connections.length : () => h.app.smtp.stats.connectionsOpened;
      const log: PassRecord[] = await simulate(h, start + DAY, attempts, 400);

      // The day was simulated to its end, within the pass bound.
      assert.equal(h.clock.now(), start + DAY, `simulation stopped early after ${log.length} passes`);

      // Connections happen exactly at the backoff schedule's probe times: 0, 1, 3, 7, 15, 31, 63 min, then hourly.
      const expected = probeSchedule(MINUTE, 60 * MINUTE, DAY);
      const connecting = log.filter((p) => p.attempts > 0);
      assert.deepEqual(connecting.map((p) => (p.at - start) / MINUTE), expected.map((t) => t / MINUTE),
        'passes that connected, in minutes since the first');
      // The first pass may open up to the per-destination cap at once (nothing is known about the host yet); every later pass one probe.
      assert.ok(connecting[0]!.attempts >= 1 && connecting[0]!.attempts <= PER_DESTINATION, `first wave: ${connecting[0]!.attempts}`);
      for (const p of connecting.slice(1)) assert.equal(p.attempts, 1, `pass at +${(p.at - start) / MINUTE} min opened ${p.attempts}`);
      const total = attempts();
      assert.ok(total <= expected.length + PER_DESTINATION - 1, `${total} connection attempts in a day`);
      assert.ok(total < s.messages / 20, `${total} attempts for ${s.messages} messages`);
      if (remote) assert.equal(remote.transactions.length, 0);

      // Nothing lost, nothing bounced; waiting on the destination cost no retry steps.
      const rows = await h.app.store.recipients.listMessages({ domain: REMOTE_DOMAIN });
      const rcpts = rows.flatMap((m) => m.recipients).filter((r) => r.destination === h.destination);
      assert.equal(rcpts.length, s.messages);
      const states = new Map<string, number>();
      for (const r of rcpts) states.set(r.state, (states.get(r.state) ?? 0) + 1);
      assert.equal((states.get('queued') ?? 0) + (states.get('deferred') ?? 0), s.messages, JSON.stringify([...states]));
      assert.equal(Math.max(...rcpts.map((r) => r.attempts)), 0, 'a recipient spent a retry step while its destination was in backoff');

      const dest = (await h.app.store.gate.listDestinations()).find((d) => d.key === h.destination);
      assert.equal(dest?.health, 'backoff');
      assert.equal(dest?.backoffMs, 60 * MINUTE);
      assert.equal(dest?.consecutiveFailures, expected.length);
    });
  }
});

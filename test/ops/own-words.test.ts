/**
 * What `queue show` and `queue list` say of a recipient that waits for a dead
 * host: the number of times it was tried (its history), not the retry
 * schedule's counter, and Halcyon's own deferral of the batches it never
 * tried as Halcyon's words — never as "host X said" (nobody said anything:
 * the remote refuses connections).
 *
 * Twenty domains share one MX host that refuses every connection (real DNS
 * and a real listener on loopback, fake time); the first wave fails, the
 * batches still waiting are deferred by the destination's backoff.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMessageDetail, formatQueueList } from '../../src/cli/format.js';
import { startDnsServer, type Zone } from '../support/dns-server.js';
import { startRemote } from '../support/remote-smtp.js';
import { enqueueMany, simulate, startHarness } from '../scheduler/harness.js';

const MINUTE = 60_000;
const MX = 'mx.refusing.test';
const DOMAINS = Array.from({ length: 20 }, (_, i) => `r${i + 1}.test`);

const cleanup: (() => Promise<void>)[] = [];
after(async () => { for (const c of cleanup.reverse()) await c(); });

test('a dead host: tries counted from the history, and Halcyon\'s own deferrals never read as the host\'s words', async () => {
  const zone: Zone = { [MX]: { A: ['127.0.0.1'] } };
  for (const d of DOMAINS) zone[d] = { MX: [{ preference: 10, exchange: MX }], TTL: 3600 };
  const dns = await startDnsServer(zone);
  cleanup.push(() => dns.close());
  const remote = await startRemote({ refuse: true });
  cleanup.push(() => remote.close());
  const h = await startHarness(remote.port, { port: remote.port, destination_backoff: '1m', destination_backoff_max: '1h', delay_warning_after: '2d' },
    { routes: {}, dns: { servers: [dns.address], timeout: '2s' } });
  cleanup.push(() => h.stop());
  const start = h.clock.now();
  for (const domain of DOMAINS) await enqueueMany(h.app.store, { count: 1, destination: domain, domain, receivedAt: start });

  // Three backoff steps: the first wave, then probes at +1 m and +3 m.
  await simulate(h, start + 4 * MINUTE, () => remote.connections.length, 50);
  assert.ok(remote.connections.length >= 3, `${remote.connections.length} connections`);

  const list = await h.app.admin.list({});
  const text = formatQueueList(list, h.clock.now());
  assert.doesNotMatch(text, /said:/, `nobody said anything, yet:\n${text}`);
  assert.match(text, /Halcyon: destination in backoff after mx\.refusing\.test\[127\.0\.0\.1\]:\d+: connection closed by the remote host \[recorded as 451 4\.4\.1\]/, text);

  // A recipient of the first wave and the probes: its history has its tries, and `queue show` counts them.
  let shown = 0;
  for (const entry of list) {
    const detail = await h.app.admin.show(entry.message.id);
    assert.ok(detail);
    for (const r of detail.recipients) {
      const tries = r.history.filter((a) => a.reply?.host !== undefined).length;
      const out = formatMessageDetail(detail, h.clock.now());
      assert.match(out, new RegExp(`${r.state}, ${tries} attempt\\(s\\)`), out);
      if (tries >= 2) shown++;
    }
  }
  assert.ok(shown >= 1, 'some recipient was tried at least twice');
});

/**
 * Tenant limits (issue 25), over real sockets: a spawned Halcyon delivers to
 * test/support/remote-smtp on loopback, tenants injected through the
 * injection API.
 * - rate: a tenant with `rate = "2/h"` sends its bucket's two messages, then
 *   its mail waits (queued, nothing failed or bounced) while another tenant's
 *   ten go to the same destination; `halcyon destinations` shows it over its
 *   rate, and the log says so with tenant=;
 * - weight: at a contended destination a weight-3 tenant gets about three
 *   deliveries for each one of a weight-1 tenant (decided by the order of
 *   the remote's log, not by timing).
 * The claim's weighting and exclusions themselves are in the queue contract
 * (test/queue/contract/tenants); suspensions in tenant-suspend.test.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { queueList, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';

const TOKEN = 'tenant-secret';
// The CLI (queue list) sends it to the running server.
process.env.HALCYON_TOKEN = TOKEN;

async function inject(h: SpawnedHalcyon, tenant: string, recipients: string[]): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${h.httpPort!}/api/inject/v1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    // A message of its own per recipient (vars), as a sender of newsletters queues them.
    body: JSON.stringify({ from: `news@${tenant}.test`, recipients: recipients.map((email) => ({ email, vars: { name: email } })), tenant,
      content: { subject: 'hello {{name}}', text: 'hello' } }),
  });
  assert.ok(res.ok, `${res.status} ${await res.text()}`);
}

const config = (remote: Remote, extra: string): string => `
[routes]
"slow.test" = "127.0.0.1:${remote.port}"
[delivery]
tls = "none"
queue_scan_interval = "200ms"
${extra}
[http]
require_token = true
[[http.tokens]]
name = "app"
token = "${TOKEN}"
`;

const rcpts = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}@slow.test`);
const from = (remote: Remote, tenant: string) => remote.transactions.filter((t) => t.mailFrom === `news@${tenant}.test`);

describe('tenant rate', () => {
  let remote: Remote;
  let h: SpawnedHalcyon;
  before(async () => {
    remote = await startRemote({ extensions: { enhancedStatusCodes: true } });
    h = await spawnHalcyon(`log_level = "info"
${config(remote, 'max_connections_per_destination = 2')}
[tenants.limited]
rate = "2/h"
`, { http: true, captureStdout: true });
  });
  after(async () => {
    await h.kill('SIGTERM');
    await remote.close();
  });

  test('over its rate a tenant\'s mail waits (no failure, no bounce) while another tenant\'s flows to the same destination', async () => {
    await inject(h, 'limited', rcpts('limited', 8));
    await inject(h, 'free', rcpts('free', 10));
    await remote.waitFor(() => from(remote, 'free').length >= 10, 30_000);
    // The bucket starts full (2) and refills one per 30 min: two of limited's eight went, not more.
    assert.equal(from(remote, 'limited').length, 2, 'limited sent its bucket and no more');
    const waiting = (await queueList(h.configFile)).flatMap((e) => e.recipients).filter((r) => r.address.startsWith('limited'));
    assert.equal(waiting.length, 6);
    for (const r of waiting) assert.ok(r.state === 'queued' || r.state === 'deferred' || r.state === 'inflight', `${r.address} is ${r.state}`);
    assert.ok(waiting.every((r) => r.tenant === 'limited'));
    assert.equal(remote.transactions.filter((t) => t.reply && !t.reply.startsWith('250')).length, 0, 'nothing refused');
    // The running server says why, under the destination.
    const shown = await runCli(['destinations', '--config', h.configFile]);
    assert.match(shown.stdout, /\n {2}tenant limited: 6 queued, over its rate \(2\/h\) until \S+Z \(\d+m\)\n/);
    assert.ok(!/tenant free: .*over its rate/.test(shown.stdout));
    assert.match(h.stdout(), /"event":"tenant_rate_limited".*"msg":"tenant=limited over its rate \(2\/h\)/);
  });
});

describe('tenant weight', () => {
  let remote: Remote;
  let h: SpawnedHalcyon;
  before(async () => {
    // About 8 ms before each reply: the destination is contended (two connections, both tenants due).
    remote = await startRemote({ delayMs: 8, extensions: { enhancedStatusCodes: true } });
    h = await spawnHalcyon(`${config(remote, 'max_connections_per_destination = 2\ninitial_connections_per_destination = 2')}
[tenants.heavy]
weight = 3
`, { http: true });
  });
  after(async () => {
    await h.kill('SIGTERM');
    await remote.close();
  });

  test('a weight-3 tenant gets about three deliveries for each one of a weight-1 tenant', async (t) => {
    await inject(h, 'light', rcpts('light', 40));
    const before = remote.transactions.length;
    await inject(h, 'heavy', rcpts('heavy', 80));
    // Past the claims made before heavy was queued (light's alone), a window of 40 deliveries.
    const SKIP = 8;
    const WINDOW = 40;
    await remote.waitFor(() => remote.transactions.length >= before + SKIP + WINDOW, 60_000);
    const window = remote.transactions.slice(before + SKIP, before + SKIP + WINDOW).map((x) => x.mailFrom);
    const heavy = window.filter((f) => f === 'news@heavy.test').length;
    const light = window.filter((f) => f === 'news@light.test').length;
    t.diagnostic(`in ${WINDOW} deliveries: heavy ${heavy}, light ${light}`);
    // Equal weights would give 20:20; weights 3:1 give 30:10.
    assert.ok(heavy >= 25, `heavy got ${heavy} of ${WINDOW}`);
    assert.ok(light >= 5, `light got ${light} of ${WINDOW}: not starved`);
  });
});

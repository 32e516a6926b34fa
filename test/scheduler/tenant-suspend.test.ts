/**
 * suspend_tenant (issue 25), over real sockets: a spawned Halcyon delivers
 * two tenants' mail to one remote (test/support/remote-smtp, one connection).
 * The remote answers one tenant's mail with "451 4.7.1 … unsolicited …",
 * which a `suspend_tenant` rule matches: that tenant's mail stops after the
 * one reply (the remote sees no second message of it) while the other
 * tenant's ten are delivered, the destination stays healthy (no backoff),
 * nothing fails; `halcyon destinations` and `halcyon tenant list` show the
 * suspension (where, until when, the rule and the reply), the log has
 * grep-able tenant= lines, and `halcyon tenant resume` lets the mail go.
 * An administrator's `halcyon tenant suspend` holds the other tenant's new
 * mail likewise (a third tenant's mail, queued after it, goes first). A 421
 * that closes the connection and matches suspends the tenant, and the
 * destination does not back off.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { queueList, runCli, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';
import { logLines as linesOf } from '../ops/helpers.js';

const TOKEN = 'suspend-secret';
process.env.HALCYON_TOKEN = TOKEN;

let remote: Remote;
let h: SpawnedHalcyon;
let refuse = true;
/** The destination key `halcyon destinations` listed (the route's: route:127.0.0.1:PORT). */
let destinationKey = '';

async function inject(tenant: string, recipients: string[]): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${h.httpPort!}/api/inject/v1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ from: `news@${tenant}.test`, recipients: recipients.map((email) => ({ email, vars: { name: email } })), tenant,
      content: { subject: 'hello {{name}}', text: 'hello' } }),
  });
  assert.ok(res.ok, `${res.status} ${await res.text()}`);
}

const cli = (...args: string[]) => runCli([...args, '--config', h.configFile]);
const from = (tenant: string) => remote.transactions.filter((t) => t.mailFrom === `news@${tenant}.test`);
const logLines = () => linesOf(h);
const rcpts = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}@slow.test`);

before(async () => {
  remote = await startRemote({
    extensions: { enhancedStatusCodes: true },
    endOfDataReply: (tx) => (refuse && tx.mailFrom === 'news@spammy.test' ? '451 4.7.1 Unsolicited mail from this sender, try again later' : '250 2.0.0 ok'),
  });
  h = await spawnHalcyon(`
log_level = "info"
[routes]
"slow.test" = "127.0.0.1:${remote.port}"
[delivery]
tls = "none"
queue_scan_interval = "200ms"
retry_initial = "1s"
max_connections_per_destination = 1
initial_connections_per_destination = 1
[[delivery.rules]]
match = "unsolicited"
code = 451
action = "suspend_tenant"
for = "1h"
[http]
require_token = true
[[http.tokens]]
name = "app"
token = "${TOKEN}"
`, { http: true, captureStdout: true });
});

after(async () => {
  await h.kill('SIGTERM');
  await remote.close();
});

test('a reply that matches suspend_tenant pauses only the tenant whose mail drew it; resume lets it go', async () => {
  await inject('spammy', rcpts('spammy', 5));
  await inject('good', rcpts('good', 10));
  await remote.waitFor(() => from('good').length >= 10, 30_000);
  assert.equal(from('spammy').length, 1, 'one reply suspended spammy: no second message of it reached the remote');

  const dests = JSON.parse((await cli('destinations', '--json')).stdout) as { key: string; health: string; tenants?: { tenant: string; queued: number; held?: { scope: string; why: string; until: number } }[] }[];
  const d = dests.find((x) => x.tenants?.some((t) => t.tenant === 'spammy'));
  assert.ok(d, JSON.stringify(dests));
  assert.equal(d.health, 'ok', 'the destination is not in backoff');
  const spammy = d.tenants!.find((t) => t.tenant === 'spammy')!;
  assert.equal(spammy.queued, 5);
  assert.equal(spammy.held?.scope, d.key);
  destinationKey = d.key;
  assert.match(spammy.held?.why ?? '', /suspend_tenant.*451 4\.7\.1 Unsolicited/);
  assert.ok(!d.tenants!.some((t) => t.tenant === 'good' && t.held), 'good is not held');
  const text = (await cli('destinations')).stdout;
  assert.match(text, /\n {2}tenant spammy: 5 queued, suspended at route:127\.0\.0\.1:\d+ until \S+Z \([\dhm]+\): rules\[0\] action=suspend_tenant .* after 451 4\.7\.1 Unsolicited/);
  assert.match((await cli('tenant', 'list')).stdout, /spammy {2}suspended at \S+ until .* \(reply rule\)/);

  // Waiting, not failed: the one refused and the four held back.
  const waiting = (await queueList(h.configFile)).flatMap((e) => e.recipients).filter((r) => r.tenant === 'spammy');
  assert.equal(waiting.length, 5);
  assert.ok(waiting.every((r) => r.state === 'deferred' || r.state === 'queued' || r.state === 'inflight'), waiting.map((r) => r.state).join());
  await remote.waitFor(() => logLines().some((l) => l.event === 'tenant_held'), 10_000);
  const suspended = logLines().find((l) => l.event === 'tenant_suspended');
  assert.equal(suspended?.tenant, 'spammy');
  assert.match(String(suspended?.msg), /^tenant=spammy suspended at /);
  assert.match(String(logLines().find((l) => l.event === 'tenant_held')?.msg), /tenant=spammy suspended at/);

  refuse = false;
  const resumed = await cli('tenant', 'resume', 'spammy');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /tenant spammy: 1 suspension\(s\) ended/);
  await remote.waitFor(() => from('spammy').filter((t) => t.reply?.startsWith('250')).length >= 5, 30_000);
});

test('an administrator\'s suspension holds a tenant\'s new mail at that destination until resumed', async () => {
  const before = from('good').length;
  const key = destinationKey;
  assert.equal(key, `route:127.0.0.1:${remote.port}`);
  const s = await cli('tenant', 'suspend', 'good', '--destination', key);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /tenant good suspended at route:127\.0\.0\.1:\d+ until resumed: suspended by /);
  await inject('good', rcpts('later', 3));
  await inject('other', rcpts('other', 3));
  await remote.waitFor(() => from('other').length >= 3, 30_000);
  // Queued before other's three, which were delivered: good's were left out of the claims, not merely late.
  assert.equal(from('good').length, before, 'nothing of good went while it was suspended');
  const dests = JSON.parse((await cli('destinations', '--json')).stdout) as { tenants?: { tenant: string; queued: number; held?: { scope: string; manual: boolean } }[] }[];
  const good = dests.flatMap((d) => d.tenants ?? []).find((t) => t.tenant === 'good');
  assert.deepEqual([good?.queued, good?.held?.scope, good?.held?.manual], [3, key, true]);
  const r = await cli('tenant', 'resume', 'good', '--destination', key);
  assert.equal(r.code, 0, r.stderr);
  await remote.waitFor(() => from('good').length >= before + 3, 30_000);
  assert.equal((await cli('tenant', 'resume', 'good')).code, 3, 'nothing left to resume');
});

test('a 421 that ends the connection and matches suspend_tenant suspends the tenant, not the destination (no backoff)', async () => {
  const closing = await startRemote({
    extensions: { enhancedStatusCodes: true },
    endOfDataReply: (tx) => (tx.mailFrom === 'news@spammy.test' ? '421 4.7.0 Unsolicited mail from this sender, closing connection' : '250 2.0.0 ok'),
  });
  const node = await spawnHalcyon(`
[routes]
"close.test" = "127.0.0.1:${closing.port}"
[delivery]
tls = "none"
queue_scan_interval = "200ms"
max_connections_per_destination = 1
initial_connections_per_destination = 1
[[delivery.rules]]
match = "unsolicited"
code = 421
action = "suspend_tenant"
for = "1h"
[http]
require_token = true
[[http.tokens]]
name = "app"
token = "${TOKEN}"
`, { http: true });
  try {
    const post = async (tenant: string, n: number) => {
      const res = await fetch(`http://127.0.0.1:${node.httpPort!}/api/inject/v1`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ from: `news@${tenant}.test`, tenant, recipients: Array.from({ length: n }, (_, i) => ({ email: `${tenant}${i}@close.test`, vars: { i } })),
          content: { subject: 'hello {{i}}', text: 'hello' } }),
      });
      assert.ok(res.ok, `${res.status} ${await res.text()}`);
    };
    await post('spammy', 3);
    await post('good', 10);
    // A backoff after the 421 would hold good's ten for a minute and more (destination_backoff).
    await closing.waitFor(() => closing.transactions.filter((t) => t.mailFrom === 'news@good.test').length >= 10, 30_000);
    assert.equal(closing.transactions.filter((t) => t.mailFrom === 'news@spammy.test').length, 1);
    const dests = JSON.parse((await runCli(['destinations', '--json', '--config', node.configFile])).stdout) as { health: string; consecutiveFailures: number; tenants?: { tenant: string; held?: unknown }[] }[];
    const d = dests.find((x) => x.tenants?.some((t) => t.tenant === 'spammy' && t.held));
    assert.ok(d, JSON.stringify(dests));
    assert.equal(d.health, 'ok');
  } finally {
    await node.kill('SIGTERM');
    await closing.close();
  }
});

/**
 * Fair tenants (issue 25), over real sockets: a spawned Halcyon delivers to a
 * slow remote (test/support/remote-smtp, one connection allowed per
 * destination). Tenant "big" injects 300 messages; once the remote has
 * taken some of them, tenant "small" injects 10. Small's ten must reach the
 * remote among the first 30 deliveries after they were queued — decided by
 * the order of the remote's log, not by timing — and not after big's backlog.
 * The claim's interleaving itself is in the queue contract suites
 * (test/queue/contract/recipient-queue).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { startRemote, type Remote } from '../support/remote-smtp.js';

const TOKEN = 'fair-secret';
const BIG = 300;
const SMALL = 10;
/** Deliveries after small's messages were queued within which all ten must be: a small multiple of ten. */
const WITHIN = 30;

let remote: Remote;
let h: SpawnedHalcyon;

async function inject(tenant: string, recipients: string[]): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${h.httpPort!}/api/inject/v1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    // Personalised (vars): a message of its own per recipient, as a sender of newsletters queues them.
    body: JSON.stringify({ from: `news@${tenant}.test`, recipients: recipients.map((email) => ({ email, vars: { name: email } })), tenant,
      content: { subject: 'hello {{name}}', text: 'hello' } }),
  });
  assert.ok(res.ok, `${res.status} ${await res.text()}`);
}

before(async () => {
  // About 8 ms before each reply: some 20–25 messages a second on one connection.
  remote = await startRemote({ delayMs: 8, extensions: { enhancedStatusCodes: true } });
  h = await spawnHalcyon(`
[routes]
"slow.test" = "127.0.0.1:${remote.port}"
[delivery]
tls = "none"
queue_scan_interval = "200ms"
max_connections_per_destination = 1
initial_connections_per_destination = 1
[http]
require_token = true
[[http.tokens]]
name = "app"
token = "${TOKEN}"
`, { http: true });
});

after(async () => {
  await h.kill('SIGTERM');
  await remote.close();
});

test('a tenant queued behind another\'s backlog at one destination is delivered within a few of its messages', async (t) => {
  const big = Array.from({ length: BIG }, (_, i) => `big${i}@slow.test`);
  for (let i = 0; i < BIG; i += 100) await inject('big', big.slice(i, i + 100));
  await remote.waitFor(() => remote.transactions.length >= 20, 20_000);
  const before = remote.transactions.length;
  await inject('small', Array.from({ length: SMALL }, (_, i) => `small${i}@slow.test`));
  await remote.waitFor(() => remote.transactions.filter((t) => t.rcpts.some((r) => r.startsWith('small'))).length >= SMALL, 25_000);
  const log = remote.transactions.map((t) => t.rcpts.join(','));
  const last = log.reduce((at, r, i) => (r.startsWith('small') ? i : at), -1);
  const after = log.slice(before, last + 1);
  t.diagnostic(`small's ten within ${after.length} deliveries after queued; ${remote.transactions.length} of ${BIG + SMALL} delivered by then`);
  assert.ok(after.length <= WITHIN, `small's ten came within ${after.length} deliveries after they were queued: ${after.join(' ')}`);
  // Each transaction is one message: big's recipients are not batched behind small's, nor small's with big's.
  assert.ok(log.every((r) => !r.includes(',')), 'one recipient per message');
  assert.ok(remote.transactions.length < BIG, 'big\'s backlog was not all delivered first');
});

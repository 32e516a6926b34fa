/**
 * Three `halcyon serve` processes on one PostgreSQL queue, when things go
 * wrong: a dead remote is probed at the pace of one backoff schedule for the
 * whole cluster (not one per node); a node killed with SIGKILL in the middle
 * of delivering loses nothing acknowledged (the others deliver its recipients
 * once its lease has run out; duplicates only for what it had in flight);
 * and a message's failed recipients get one DSN, whichever node sweeps.
 *
 * Real processes, real sockets (test/support/remote-smtp plays the remote and
 * the sender's mailbox), a private database per test. Assertions are on
 * counts; waits are generous (a loaded 2-core machine), and the one window
 * used only bounds a count from above (load can only make it smaller). Skips
 * with the reason when PostgreSQL does not answer (fails under
 * HALCYON_REQUIRE_INTEROP=1).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { message, parseDsn, submit, waitUntil } from '../support/postfix.js';
import { pgUnavailable } from '../support/postgres.js';
import { startRemote } from '../support/remote-smtp.js';
import { REMOTE, startCluster, type Cluster } from './nodes.js';

const skip = await pgUnavailable();

/** One query on the cluster's database (what an operator would look at with psql). */
async function sql<T extends Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

const count = async (url: string, where: string, params: unknown[] = []): Promise<number> =>
  Number((await sql<{ n: string }>(url, `SELECT COUNT(*) AS n FROM recipients WHERE ${where}`, params))[0]!.n);

interface Mail { readonly from: string; readonly to: readonly string[]; readonly subject: string }

/** Submits every mail, spread round-robin over the nodes (each node's share in order); returns the queue ids. */
async function submitSpread(c: Cluster, mails: readonly Mail[]): Promise<string[]> {
  const ids: string[] = new Array<string>(mails.length);
  await Promise.all(c.nodes.map(async (node, n) => {
    for (let i = n; i < mails.length; i += c.nodes.length) {
      const m = mails[i]!;
      ids[i] = await submit(node.port, { from: m.from, to: m.to, content: message(m.from, m.to, m.subject) });
    }
  }));
  return ids;
}

async function cluster(t: TestContext, remotePort: number, delivery: Record<string, unknown>): Promise<Cluster> {
  const c = await startCluster(3, remotePort, delivery);
  t.after(() => c.stop());
  return c;
}

test('a dead host with 60 messages queued on three nodes costs the probes of one backoff schedule, not three', { skip, timeout: 120_000 }, async (t) => {
  const remote = await startRemote({ banner: '421 4.3.2 Service not available, try later' });
  t.after(() => remote.close());
  // Backoff 1 s doubling to 4 s: probes 1, 3, 7, 11 s after the first failure.
  const CAP = 3;
  const WINDOW_MS = 12_000;
  const PROBES_IN_WINDOW = 4;
  const c = await cluster(t, remote.port, {
    max_connections_per_destination: CAP, destination_backoff: '1s', destination_backoff_max: '4s', retry_initial: '1s',
  });
  // When each connection reached the remote (sampled: only the count inside the window matters).
  const seen: number[] = [];
  const sampler = setInterval(() => { while (seen.length < remote.connections.length) seen.push(Date.now()); }, 20);
  t.after(() => clearInterval(sampler));

  const N = 60;
  await submitSpread(c, Array.from({ length: N }, (_, i) => ({ from: 'sender@client.test', to: [`user${i}@${REMOTE}`], subject: `dead ${i}` })));
  await waitUntil(() => seen.length > 0, 'a first connection to the dead host', 60_000);
  const t0 = seen[0]!;
  await waitUntil(() => Date.now() >= t0 + WINDOW_MS + 100, 'the window to pass', WINDOW_MS + 30_000);
  const inWindow = seen.filter((at) => at <= t0 + WINDOW_MS).length;
  // One schedule: the first wave (at most the cap, granted before anything was known) and then one probe per
  // backoff step. Three nodes probing on their own would be three per step.
  assert.ok(inWindow <= CAP + PROBES_IN_WINDOW + 1,
    `${inWindow} connections in the first ${WINDOW_MS / 1000} s (one schedule allows ${CAP} + ${PROBES_IN_WINDOW} + 1 slack)`);

  // The schedule went on (the destination's row counts its failure waves), and every connection is one of them.
  const failures = async (): Promise<number> => Number((await sql<{ f: string }>(c.db.url, 'SELECT MAX(consecutive_failures) AS f FROM destinations'))[0]?.f ?? 0);
  await waitUntil(async () => (await failures()) >= 3, 'three backoff steps', 60_000);
  const connections = remote.connections.length;
  const steps = await failures();
  // Each step after the first is one probe; at most one probe can be connected but not yet recorded.
  assert.ok(connections <= steps + CAP, `${connections} connections for ${steps} backoff steps (first wave ≤ ${CAP})`);
  assert.ok(connections < N / 4, `${connections} connections for ${N} messages`);
  assert.equal(remote.transactions.length, 0);

  // Nothing lost or bounced, and waiting cost the recipients none of their own retry steps: the cluster's queue, from any node.
  const listed = JSON.parse(await c.cli(1, 'queue', 'list', '--json', '--direct')) as { recipients: { state: string; attempts: number }[] }[];
  const rcpts = listed.flatMap((m) => m.recipients);
  assert.equal(rcpts.length, N);
  assert.deepEqual([...new Set(rcpts.map((r) => r.state))].filter((s) => s !== 'queued' && s !== 'deferred' && s !== 'inflight'), []);
  assert.equal(Math.max(...rcpts.map((r) => r.attempts)), 0);
  t.diagnostic(`dead host: ${inWindow} connections in the first ${WINDOW_MS / 1000} s; ${connections} connections for ${steps} backoff steps`);
});

test('kill -9 of a node while 120 messages are being delivered: every acknowledged message arrives, duplicates only from what it had in flight', { skip, timeout: 120_000 }, async (t) => {
  // A slowish sink: 60 ms before every reply, at most 3 connections cluster-wide (a few seconds of delivering).
  const remote = await startRemote({ delayMs: 60 });
  t.after(() => remote.close());
  const c = await cluster(t, remote.port, { max_connections_per_destination: 3, lease: '6s' });
  const N = 120;
  const addr = (i: number): string => `user${i}@${REMOTE}`;
  const ids = await submitSpread(c, Array.from({ length: N }, (_, i) => ({ from: 'sender@client.test', to: [addr(i)], subject: `kill ${i}` })));
  const deliveredAtSubmit = remote.transactions.length;
  assert.equal(new Set(ids).size, N, 'every message acknowledged with 250 and a queue id');

  // Kill node-0 while it is delivering: the sink has some, node-0 holds claims.
  const owned = (): Promise<number> => count(c.db.url, "state = 'inflight' AND lease_owner = 'node-0'");
  await waitUntil(async () => {
    if (remote.transactions.length >= N) throw new Error('everything was delivered before node-0 could be killed mid-delivery');
    return remote.transactions.length >= 10 && (await owned()) > 0;
  }, 'node-0 delivering', 60_000);
  await c.nodes[0]!.kill('SIGKILL');
  const inFlight = await owned();
  const deliveredAtKill = remote.transactions.length;

  await remote.waitFor(() => new Set(remote.transactions.flatMap((x) => x.rcpts)).size >= N, 90_000);
  // Whatever was going to be delivered twice has been by the time the queue holds nothing unfinished.
  await waitUntil(async () => (await count(c.db.url, "state NOT IN ('delivered', 'failed', 'expired')")) === 0, 'the queue to settle', 30_000);
  const got = remote.transactions.flatMap((x) => x.rcpts);
  const missing = Array.from({ length: N }, (_, i) => addr(i)).filter((a) => !got.includes(a));
  assert.deepEqual(missing, [], 'every message acknowledged with 250 arrives');
  const duplicates = got.length - new Set(got).size;
  t.diagnostic(`kill -9: node-0 had ${inFlight} recipient(s) claimed when killed (the sink had ${deliveredAtSubmit} when the last was acknowledged, ${deliveredAtKill} at the kill); ${duplicates} duplicate(s)`);
  // A duplicate is a recipient whose 250 came before node-0 recorded it: one node-0 held when it died.
  assert.ok(duplicates <= inFlight, `${duplicates} duplicates, but node-0 held only ${inFlight} recipients`);
  assert.equal(await count(c.db.url, "state <> 'delivered'"), 0, 'nothing failed or expired');
});

test('a DSN for failed recipients is sent once per message, whichever of three nodes sweeps', { skip, timeout: 120_000 }, async (t) => {
  const SENDER = `sender@${REMOTE}`;
  // fail… get 550 at RCPT (failed at once); slow… get 451 (deferred for an hour, so they expire first).
  const remote = await startRemote({
    rcpt: (rcpt) => (rcpt.startsWith('fail') ? '550 5.1.1 No such user' : rcpt.startsWith('slow') ? '451 4.3.0 Try again later' : undefined),
  });
  t.after(() => remote.close());
  const c = await cluster(t, remote.port, { retry_initial: '1h', max_queue_lifetime: '5s', lease: '4s' });
  const FAILING = 30;
  const EXPIRING = 10;
  const mails: Mail[] = [
    ...Array.from({ length: FAILING }, (_, i) => ({ from: SENDER, to: [`fail${i}a@${REMOTE}`, `ok${i}@${REMOTE}`, `fail${i}b@${REMOTE}`], subject: `[F${i}]` })),
    ...Array.from({ length: EXPIRING }, (_, i) => ({ from: SENDER, to: [`slow${i}a@${REMOTE}`, `slow${i}b@${REMOTE}`], subject: `[E${i}]` })),
  ];
  await submitSpread(c, mails);

  const dsns = () => remote.transactions.filter((x) => x.mailFrom === '' && x.rcpts.includes(SENDER));
  await remote.waitFor(() => dsns().length >= FAILING + EXPIRING, 60_000);
  // A second DSN for one message would come from another node's sweep of the same moment: give it time to show.
  await waitUntil(async () => (await count(c.db.url, 'dsn_done = 0 AND state IN (\'failed\', \'expired\')')) === 0, 'every report marked sent', 30_000);
  await waitUntil(() => remote.transactions.every((x) => x.reply !== undefined) && remote.current === 0, 'the remote idle', 10_000).catch(() => undefined);

  const perMessage = new Map<string, number>();
  const recipientsOf = new Map<string, string[]>();
  for (const x of dsns()) {
    const text = x.data.toString('utf8');
    const tokens = [...new Set(text.match(/\[[FE]\d+\]/g) ?? [])];
    assert.equal(tokens.length, 1, `a DSN about exactly one message: ${tokens.join(' ')}`);
    const token = tokens[0]!;
    perMessage.set(token, (perMessage.get(token) ?? 0) + 1);
    recipientsOf.set(token, parseDsn(x.data).perRecipient.map((g) => (g.get('final-recipient') ?? '').replace(/^rfc822;\s*/i, '')).sort());
  }
  const twice = [...perMessage].filter(([, n]) => n > 1).map(([k, n]) => `${k}×${n}`);
  t.diagnostic(`DSNs: ${dsns().length} for ${FAILING + EXPIRING} messages${twice.length ? `; more than one: ${twice.join(' ')}` : ''}`);
  assert.deepEqual(twice, [], 'one DSN per message');
  assert.equal(perMessage.size, FAILING + EXPIRING, 'every message with failed recipients got its DSN');
  // Each DSN reports all of the message's failed recipients together (none split off into another report).
  for (let i = 0; i < FAILING; i++) assert.deepEqual(recipientsOf.get(`[F${i}]`), [`fail${i}a@${REMOTE}`, `fail${i}b@${REMOTE}`]);
  for (let i = 0; i < EXPIRING; i++) assert.deepEqual(recipientsOf.get(`[E${i}]`), [`slow${i}a@${REMOTE}`, `slow${i}b@${REMOTE}`]);
  // The delivered recipients were delivered once.
  const ok = remote.transactions.flatMap((x) => x.rcpts).filter((r) => r.startsWith('ok'));
  assert.equal(ok.length, FAILING);
  assert.equal(new Set(ok).size, FAILING);
});

/**
 * Halcyon on a PostgreSQL queue, as an operator runs it: `halcyon queue
 * migrate` creates the schema; a node accepts over SMTP and delivers; several
 * nodes on one database share the work, and `max_connections_per_destination`
 * holds across them (the remote counts concurrent sessions). Skips with the
 * reason when PostgreSQL does not answer (fails under HALCYON_REQUIRE_INTEROP=1).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PG_SCHEMA_VERSION } from '../../src/queue/pg/schema.js';
import { CLI } from '../support/halcyon.js';
import { message, submit } from '../support/postfix.js';
import { createTestDatabase, pgUnavailable } from '../support/postgres.js';
import { startRemote } from '../support/remote-smtp.js';
import { clusterToml, REMOTE, startCluster } from './nodes.js';

const run = promisify(execFile);
const skip = await pgUnavailable();

test('queue migrate creates the schema once; a second run finds it current', { skip }, async () => {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'halcyon-migrate-'));
  after(async () => { rmSync(dir, { recursive: true, force: true }); await db.drop(); });
  const file = join(dir, 'halcyon.toml');
  writeFileSync(file, `data_dir = ${JSON.stringify(dir)}\n${clusterToml(db.url, 'n1', 9)}`);
  assert.match((await run(process.execPath, [CLI, 'queue', 'migrate', '--config', file])).stdout, new RegExp(`migrated from version 0 to ${PG_SCHEMA_VERSION}\n`));
  assert.match((await run(process.execPath, [CLI, 'queue', 'migrate', '--config', file])).stdout, new RegExp(`at version ${PG_SCHEMA_VERSION}\n`));
});

test('three nodes on one database deliver every message once, at most 2 connections to the remote at a time', { skip }, async () => {
  const remote = await startRemote({ delayMs: 5 });
  after(() => remote.close());
  const c = await startCluster(3, remote.port, { max_connections_per_destination: 2 });
  after(() => c.stop());
  const N = 60;
  const ids: string[] = [];
  for (let i = 0; i < N; i++) {
    const node = c.nodes[i % 3]!;
    ids.push(await submit(node.port, { from: 'sender@client.test', to: [`user${i}@${REMOTE}`], content: message('sender@client.test', [`user${i}@${REMOTE}`], `cluster ${i}`) }));
  }
  await remote.waitFor(() => remote.transactions.length >= N, 60_000);
  const got = remote.transactions.flatMap((t) => t.rcpts).sort();
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => `user${i}@${REMOTE}`).sort(), 'every message once');
  // Sessions from accept to the 221 of QUIT (a socket in TCP teardown after 221 is not a session).
  assert.ok(remote.maxConcurrentSessions <= 2, `at most 2 concurrent sessions cluster-wide (saw ${remote.maxConcurrentSessions}; sockets ${remote.maxConcurrent})`);
  // The cluster's queue, from any node: empty once delivered.
  const listed = JSON.parse(await c.cli(2, 'queue', 'list', '--json', '--direct')) as unknown[];
  assert.ok(listed.length <= N);
  await remote.waitFor(() => false, 1_500).catch(() => undefined);
  const left = JSON.parse(await c.cli(1, 'queue', 'list', '--json', '--direct')) as { recipients: { state: string }[] }[];
  assert.deepEqual(left.map((l) => l.recipients.map((r) => r.state)), [], 'delivered messages leave the queue');
  assert.equal(new Set(ids).size, N);
});

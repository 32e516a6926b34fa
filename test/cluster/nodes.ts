/**
 * test/cluster/nodes — `halcyon serve` processes sharing one PostgreSQL
 * queue, for the cluster tests: a private database per test (created and
 * dropped), `halcyon queue migrate`, N nodes each with its own node_id and
 * data_dir, `remote.test` routed to a scripted remote (test/support/
 * remote-smtp). Asserts nothing itself.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { stringify as stringifyToml } from 'smol-toml';
import { CLI, spawnHalcyon, type SpawnedHalcyon } from '../support/halcyon.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const run = promisify(execFile);

export const REMOTE = 'remote.test';

export interface Cluster {
  readonly db: TestDatabase;
  readonly nodes: SpawnedHalcyon[];
  /** Runs the CLI with node i's config; resolves with stdout. */
  cli(i: number, ...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export function clusterToml(url: string, node: string, remotePort: number, delivery: Record<string, unknown> = {}, more: Record<string, unknown> = {}): string {
  return stringifyToml({
    ...more,
    node_id: node,
    queue: { backend: 'postgres', url },
    relay: { networks: ['127.0.0.0/8'] },
    routes: { [REMOTE]: `127.0.0.1:${remotePort}` },
    delivery: { tls: 'none', queue_scan_interval: '200ms', ...delivery },
  });
}

/** `more`: other top-level settings of every node (e.g. `tenants`). */
export async function startCluster(n: number, remotePort: number, delivery: Record<string, unknown> = {}, more: Record<string, unknown> = {}): Promise<Cluster> {
  const db = await createTestDatabase();
  const nodes: SpawnedHalcyon[] = [];
  const stop = async (): Promise<void> => {
    for (const node of nodes) {
      await node.kill('SIGTERM');
      rmSync(node.dataDir, { recursive: true, force: true });
    }
    await db.drop();
  };
  try {
    for (let i = 0; i < n; i++) nodes.push(await spawnHalcyon(clusterToml(db.url, `node-${i}`, remotePort, delivery, more), { captureStdout: true }));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    db, nodes, stop,
    async cli(i, ...args) {
      return (await run(process.execPath, [CLI, ...args, '--config', nodes[i]!.configFile], { timeout: 30_000 })).stdout;
    },
  };
}

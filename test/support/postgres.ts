/**
 * test/support/postgres — a private database on the machine's PostgreSQL
 * (127.0.0.1:5432, user postgres, no password; PG_URL overrides the server)
 * for one test run: created with a random name, dropped (WITH FORCE) when
 * done. When the server does not answer, `pgUnavailable()` says why, so a
 * suite can skip — unless HALCYON_REQUIRE_INTEROP=1 (CI starts PostgreSQL),
 * where it throws instead. Never touches another database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const SERVER = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432';

let probed: Promise<string | undefined> | undefined;

/** Undefined when PostgreSQL answers; else why not (and under HALCYON_REQUIRE_INTEROP=1 it throws). */
export async function pgUnavailable(): Promise<string | undefined> {
  probed ??= (async () => {
    const c = new pg.Client({ connectionString: `${SERVER}/postgres`, connectionTimeoutMillis: 3_000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return undefined;
    } catch (err) {
      return `PostgreSQL not reachable at ${SERVER}: ${(err as Error).message}`;
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  const why = await probed;
  if (why !== undefined && process.env.HALCYON_REQUIRE_INTEROP === '1') throw new Error(`${why}, and HALCYON_REQUIRE_INTEROP=1`);
  return why;
}

export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `halcyon_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${SERVER}/postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: `${SERVER}/${name}`,
    async drop() {
      const a = new pg.Client({ connectionString: `${SERVER}/postgres` });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

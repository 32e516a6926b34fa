/**
 * bench/toast — what storing bodies without TOAST compression (PostgreSQL
 * migration 9: `bodies.data SET STORAGE EXTERNAL`) changes per 100 KiB body:
 * the server's execution time of the INSERT and its WAL bytes, from
 * `EXPLAIN (ANALYZE, WAL)` — the statement's own figures, which other work on
 * the server does not add to — and the bytes stored. Two contents: what
 * smtp-source sends (one line repeated: compresses to almost nothing) and
 * base64 of random bytes (an attachment of already-compressed data: pglz
 * gains little or nothing). lz4 (`SET COMPRESSION lz4`) is measured beside
 * them as the alternative. In a private database, dropped at the end.
 *
 * Run: node dist/bench/toast.js [bodies=200] [size=102400] [runs=3]
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTestDatabase } from '../test/support/postgres.js';
import { median } from './table.js';

const BODIES = Number(process.argv[2] ?? 200);
const SIZE = Number(process.argv[3] ?? 102_400);
const RUNS = Number(process.argv[4] ?? 3);
const BATCH = 10;

const contents: Record<string, () => Buffer> = {
  'smtp-source text': () => Buffer.from('La de da de da 1.\r\n'.repeat(Math.ceil(SIZE / 19)).slice(0, SIZE)),
  'base64 of random bytes': () => Buffer.from(randomBytes(Math.ceil(SIZE * 0.75)).toString('base64').replace(/.{76}/g, '$&\r\n').slice(0, SIZE)),
};

interface Plan { 'Execution Time': number; Plan: { 'WAL Bytes': number } }

async function main(): Promise<void> {
  const db = await createTestDatabase();
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    for (const [name, make] of Object.entries(contents)) {
      for (const storage of ['default (pglz)', 'lz4', 'EXTERNAL'] as const) {
        const ms: number[] = [];
        const wal: number[] = [];
        const stored: number[] = [];
        for (let run = 0; run < RUNS; run++) {
          await c.query('DROP TABLE IF EXISTS b; CREATE TABLE b (message_id text PRIMARY KEY, data bytea NOT NULL)');
          if (storage === 'EXTERNAL') await c.query('ALTER TABLE b ALTER COLUMN data SET STORAGE EXTERNAL');
          if (storage === 'lz4') await c.query('ALTER TABLE b ALTER COLUMN data SET COMPRESSION lz4');
          let t = 0;
          let w = 0;
          for (let i = 0; i < BODIES; i += BATCH) {
            const ids = Array.from({ length: BATCH }, (_, j) => `m${run}-${i + j}`);
            const { rows } = await c.query<{ 'QUERY PLAN': Plan[] }>('EXPLAIN (ANALYZE, WAL, FORMAT JSON) INSERT INTO b (message_id, data) SELECT * FROM unnest($1::text[], $2::bytea[])',
              [ids, ids.map(() => make())]);
            const p = rows[0]!['QUERY PLAN'][0]!;
            t += p['Execution Time'];
            w += p.Plan['WAL Bytes'];
          }
          ms.push(t / BODIES);
          wal.push(w / BODIES);
          stored.push(Number((await c.query<{ n: string }>("SELECT pg_total_relation_size('b') AS n")).rows[0]!.n) / BODIES);
        }
        const f = (xs: number[], d: number): string => `${median(xs)!.toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
        console.log(`${name.padEnd(24)} ${storage.padEnd(15)} INSERT ${f(ms, 3)} ms/body, WAL ${f(wal, 0)} B/body, stored ${f(stored, 0)} B/body`);
      }
    }
  } finally {
    await c.end();
    await db.drop();
  }
}

await main();

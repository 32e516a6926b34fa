/**
 * queue/store-worker — the worker thread that owns the SQLite queue when the
 * server runs (queue/worker-store is its other half).
 *
 * Why a thread: better-sqlite3 is synchronous, and every commit waits for an
 * fsync. On the main thread each fsync would stop every SMTP session for its
 * duration. Here it stops only this thread, and the requests that arrive
 * meanwhile are all applied in the NEXT transaction: every request received
 * in one turn of this thread's event loop runs inside one outer transaction
 * (each write in its own savepoint, so one failing write does not undo the
 * others), and all their answers are posted only after that transaction
 * committed. One fsync thus covers many enqueues, claims and outcomes — group
 * commit for everything, which is what makes `250` cheap and still durable.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HalcyonError } from '../errors.js';
import { openSqliteStore } from './sqlite-store.js';

export interface WorkerRequest {
  readonly id: number;
  readonly method: string;
  readonly args: unknown[];
  /** The caller's clock, so a test's fake clock reaches the store. */
  readonly now: number;
}

export type WorkerResponse =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number; readonly ok: false; readonly error: { readonly code?: string; readonly message: string } };

const port = parentPort;
if (!port) throw new Error('store-worker must run in a worker thread');
const { dataDir } = workerData as { dataDir: string };

let now = Date.now();
const store = await openSqliteStore({ dataDir, clock: () => now });
// The store's own database handle, for the outer transaction (its methods nest inside as savepoints).
const db = (store as unknown as { db: import('better-sqlite3').Database }).db;

/** Structured clone turns Buffers into Uint8Arrays; the store wants Buffers back. */
function revive(method: string, args: unknown[]): unknown[] {
  if (method === 'enqueue') {
    const msg = args[0] as { body: Uint8Array };
    return [{ ...msg, body: Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength) }];
  }
  return args;
}

const errorOf = (err: unknown) => ({
  code: err instanceof HalcyonError ? err.code : (err as { code?: string }).code,
  message: err instanceof Error ? err.message : String(err),
});

let pending: WorkerRequest[] = [];
let scheduled = false;

port.on('message', (req: WorkerRequest) => {
  pending.push(req);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runTurn);
  }
});

function runTurn(): void {
  scheduled = false;
  const reqs = pending;
  pending = [];
  if (reqs.length === 1 && reqs[0]!.method === 'close') return void close(reqs[0]!);
  const calls: Promise<unknown>[] = [];
  try {
    db.transaction(() => {
      for (const req of reqs) {
        now = req.now;
        if (req.method === 'close') {
          calls.push(Promise.resolve(undefined));
          continue;
        }
        const fn = (store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[req.method];
        if (typeof fn !== 'function') {
          calls.push(Promise.reject(new Error(`no such store method: ${req.method}`)));
          continue;
        }
        // Each call returns a promise; the synchronous part (the SQL) runs now, inside this transaction.
        calls.push(fn.apply(store, revive(req.method, req.args)));
      }
      // Enqueues batch themselves on setImmediate; flush them inside this transaction too.
      (store as unknown as { flushBatches(): void }).flushBatches();
    }).immediate();
  } catch (err) {
    // The commit itself failed (disk full, I/O error): nothing of this turn is durable.
    for (const req of reqs) port!.postMessage({ id: req.id, ok: false, error: errorOf(new HalcyonError('HAL_ERR_QUEUE_WRITE', String(err))) } satisfies WorkerResponse);
    return;
  }
  void Promise.allSettled(calls).then((results) => {
    results.forEach((r, i) => {
      const id = reqs[i]!.id;
      port!.postMessage(r.status === 'fulfilled' ? { id, ok: true, result: r.value } : { id, ok: false, error: errorOf(r.reason) } satisfies WorkerResponse);
    });
    if (reqs.some((r) => r.method === 'close')) void close(undefined);
  });
}

async function close(req: WorkerRequest | undefined): Promise<void> {
  await store.close();
  if (req) port!.postMessage({ id: req.id, ok: true, result: undefined } satisfies WorkerResponse);
  port!.close();
}

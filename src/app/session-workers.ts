/**
 * app/session-workers — the main thread's side of the SMTP session workers
 * (`[server] workers`, decision 0017): starts them, each with its own port to
 * the queue (the SQLite queue thread answers it directly, `attach`; with
 * PostgreSQL the main thread serves it from its pool, queue/port-server),
 * answers what they ask of the node (app/inbound localNode: admission,
 * rates, AUTH lockouts, recipient verification), counts what they tell and
 * writes their log lines into the main thread's log stream.
 *
 * The first worker binds each address as configured (a port 0 is resolved
 * there); the others bind what it bound, all with SO_REUSEPORT, so the
 * kernel spreads new connections over them. A reload and every change of
 * the queue's health are sent to every worker. A worker that dies has its
 * connections released from the node's counts and is started again (at
 * most RESTARTS_PER_MINUTE times a minute; past that the node serves with
 * the workers it has left, and logs it). Mail a worker had answered 250 to
 * is in the queue; a message it was receiving is not, and its client,
 * having no 250, sends it again.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker } from 'node:worker_threads';
import { pino, type Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ListenerSpec } from '../inbound/server.js';
import type { Queue } from '../queue/store.js';
import { WorkerQueue } from '../queue/sqlite/worker-store.js';
import { servePort } from '../queue/port-server.js';
import type { NodeSide } from './inbound.js';
import type { Ask, FromWorker, SessionWorkerData, Told, ToWorker } from './session-protocol.js';

const RESTARTS_PER_MINUTE = 5;

/** `[server] workers` as a number: "auto" is one per core. */
export function sessionWorkerCount(cfg: Config): number {
  return cfg.server.workers === 'auto' ? availableParallelism() : cfg.server.workers;
}

interface Running {
  readonly worker: Worker;
  /** Connections of this worker the node counts (ip → how many), released if it dies. */
  readonly admitted: Map<string, number>;
  gone: boolean;
  drained?: () => void;
  /** Called for each `reloaded`, oldest first. */
  readonly reloads: (() => void)[];
}

export class SessionWorkers {
  private readonly running = new Map<number, Running>();
  private bound: ListenerSpec[] | undefined;
  private stopping = false;
  private draining = false;
  private restarts: number[] = [];
  private readonly writeLog: (lines: string) => void;

  constructor(private readonly count: number, private readonly deps: {
    config: () => Config; log: Logger; node: NodeSide; queue: Queue;
  }) {
    const stream = (deps.log as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym];
    this.writeLog = (lines) => stream?.write(lines);
    deps.queue.health.onChange(() => this.broadcast({ t: 'health', trouble: deps.queue.health.problem?.code }));
  }

  /** Starts every worker; resolves with what the first one bound. */
  async listen(specs: readonly ListenerSpec[]): Promise<{ kind: string; address: string }[]> {
    const first = await this.start(1, specs.map((s) => ({ ...s, reusePort: true })));
    this.bound = specs.map((s, i) => ({ ...s, address: first[i]!.address, reusePort: true }));
    for (let i = 2; i <= this.count; i++) await this.start(i, this.bound);
    return first;
  }

  /** Sends a reloaded configuration to every worker (each swaps its snapshot as the main thread does); resolves when each has. */
  async reload(next: Config): Promise<void> {
    const all = [...this.running.values()].map((r) => new Promise<void>((resolve) => {
      r.reloads.push(resolve);
      r.worker.once('exit', () => resolve());
      r.worker.postMessage({ t: 'config', config: next, logLevel: this.deps.log.level } satisfies ToWorker);
    }));
    await Promise.all(all);
  }

  /** The thread of worker `index` (1…N), while it runs: tests end one to see that a crash loses no accepted mail. */
  threadOf(index: number): Worker | undefined {
    return this.running.get(index)?.worker;
  }

  /** Stops accepting and waits for each worker's sessions to end (up to deadlineMs); then closes them. */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    const all = [...this.running.values()].map((r) => new Promise<void>((resolve) => {
      r.drained = resolve;
      r.worker.once('exit', () => resolve());
    }));
    this.broadcast({ t: 'drain', deadlineMs });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(all), new Promise((r) => { timer = setTimeout(r, deadlineMs + 1_000); })]);
    clearTimeout(timer);
    await this.close();
  }

  async close(): Promise<void> {
    this.stopping = true;
    const exits = [...this.running.values()].map((r) => new Promise<void>((resolve) => {
      r.worker.once('exit', () => resolve());
      r.worker.postMessage({ t: 'close' } satisfies ToWorker);
      setTimeout(() => void r.worker.terminate().catch(() => 0), 2_000).unref();
    }));
    await Promise.all(exits);
  }

  private broadcast(msg: ToWorker): void {
    for (const r of this.running.values()) r.worker.postMessage(msg);
  }

  /** Starts worker `index`; resolves when its listeners are bound. */
  private start(index: number, specs: readonly ListenerSpec[]): Promise<{ kind: string; address: string }[]> {
    const { port1, port2 } = new MessageChannel();
    if (this.deps.queue instanceof WorkerQueue) this.deps.queue.attach(port1);
    else servePort(port1, this.deps.queue);
    const workerData: SessionWorkerData = {
      index, lanes: this.count + 1, config: this.deps.config(), specs, logLevel: this.deps.log.level, queue: port2,
    };
    const worker = new Worker(new URL('./session-worker.js', import.meta.url), { name: `halcyon-session-${index}`, workerData, transferList: [port2] });
    const r: Running = { worker, admitted: new Map(), gone: false, reloads: [] };
    this.running.set(index, r);
    if (this.deps.queue.health.problem) worker.postMessage({ t: 'health', trouble: this.deps.queue.health.problem.code } satisfies ToWorker);
    return new Promise((resolve, reject) => {
      let up = false;
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'listening') {
          up = true;
          return resolve([...m.listening]);
        }
        if (m.t === 'start_failed') return reject(new Error(m.error));
        if (m.t === 'drained') return r.drained?.();
        if (m.t === 'reloaded') return r.reloads.shift()?.();
        if (m.t === 'tell') return this.told(r, index, m.told);
        void this.answer(r, worker, m);
      });
      worker.on('error', (err) => this.deps.log.error({ event: 'session_worker_error', worker: index, err: err.message }, `session worker ${index} failed: ${err.message}`));
      worker.on('exit', (code) => {
        r.gone = true;
        port1.close(); // served here (PostgreSQL): stop serving it; handed to the queue thread (SQLite): already closed with the worker's end
        if (this.running.get(index) === r) this.running.delete(index);
        for (const [ip, n] of r.admitted) for (let i = 0; i < n; i++) this.deps.node.gate.release(ip);
        r.admitted.clear();
        if (!up) return reject(new Error(`session worker ${index} exited (code ${code}) before listening`));
        if (!this.stopping) this.restart(index, code);
      });
    });
  }

  private restart(index: number, code: number): void {
    const now = Date.now();
    this.restarts = [...this.restarts.filter((t) => now - t < 60_000), now];
    if (this.restarts.length > RESTARTS_PER_MINUTE || !this.bound || this.draining) {
      this.deps.log.error({ event: 'session_worker_exited', worker: index, code, restarted: false },
        `session worker ${index} exited (code ${code}); not started again (${RESTARTS_PER_MINUTE} restarts a minute at most); ${this.running.size} worker(s) left`);
      return;
    }
    this.deps.log.error({ event: 'session_worker_exited', worker: index, code, restarted: true }, `session worker ${index} exited (code ${code}); starting it again`);
    this.start(index, this.bound).catch((err: unknown) => {
      this.deps.log.error({ event: 'session_worker_exited', worker: index, err: (err as Error).message, restarted: false }, `session worker ${index} could not be started again: ${(err as Error).message}`);
    });
  }

  private told(r: Running, index: number, told: readonly Told[]): void {
    const node = this.deps.node;
    for (const t of told) {
      switch (t.k) {
        case 'release': {
          const n = (r.admitted.get(t.ip) ?? 0) - 1;
          if (n < 0) break; // released when the worker died: not twice
          if (n === 0) r.admitted.delete(t.ip);
          else r.admitted.set(t.ip, n);
          node.gate.release(t.ip);
          break;
        }
        case 'accepted': node.accepted(t.tenant); break;
        case 'rejected': node.rejected(t.reason); break;
        case 'connection': node.connection(t.kind, index); break;
        case 'log': this.writeLog(t.lines); break;
      }
    }
  }

  private async answer(r: Running, worker: Worker, m: Ask): Promise<void> {
    const node = this.deps.node;
    let value: unknown;
    try {
      switch (m.q) {
        case 'admit': {
          const a = await node.gate.admit(m.args[0], m.args[1] || this.draining);
          // A worker gone meanwhile holds nothing: its place is given back at once.
          if (a.ok && r.gone) node.gate.release(a.ip);
          else if (a.ok) r.admitted.set(a.ip, (r.admitted.get(a.ip) ?? 0) + 1);
          value = a;
          break;
        }
        case 'messageOver': value = await node.rate.messageOver(...m.args); break;
        case 'recipientOver': value = await node.rate.recipientOver(...m.args); break;
        case 'authLockedUntil': value = await node.authThrottle.lockedUntil(...m.args); break;
        case 'authFailed': value = await node.authThrottle.failed(...m.args); break;
        case 'verifyRecipient': value = await node.verifyRecipient(...m.args); break;
      }
    } catch (err) {
      return worker.postMessage({ t: 'answer', id: m.id, ok: false, error: (err as Error).message } satisfies ToWorker);
    }
    worker.postMessage({ t: 'answer', id: m.id, ok: true, value } satisfies ToWorker);
  }
}

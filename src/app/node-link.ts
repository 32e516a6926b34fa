/**
 * app/node-link — an SMTP session worker's side of its port to the main
 * thread (app/session-protocol): a NodeSide (app/inbound) whose decisions
 * are asked of the main thread's (admission, rates, AUTH lockouts,
 * recipient verification), whose counts are told to it, batched per
 * event-loop turn, and a stream that sends the worker's log lines there to
 * be written with the main thread's own (one stream, one line per write).
 *
 * Decides nothing itself, except what needs no question: a rate or a
 * verification that is off in the configuration in force is not asked.
 */
import { Writable } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';
import type { Config } from '../config/schema.js';
import { probedRoute } from '../inbound/verifier.js';
import type { NodeSide } from './inbound.js';
import type { Question, Questions, Told, ToWorker } from './session-protocol.js';

export class NodeLink {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private told: Told[] | undefined;
  /** The main thread's word on the queue's health (pushed at each change). */
  trouble: ErrorCode | undefined;

  constructor(private readonly port: Pick<MessagePort, 'postMessage'>) {}

  /** An answer from the main thread (the worker routes its other messages itself). */
  answer(msg: Extract<ToWorker, { t: 'answer' }>): void {
    const w = this.waiting.get(msg.id);
    if (!w) return;
    this.waiting.delete(msg.id);
    if (msg.ok) w.resolve(msg.value);
    else w.reject(new Error(msg.error));
  }

  ask<K extends Question>(q: K, ...args: Questions[K]['args']): Promise<Questions[K]['result']> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage({ t: 'ask', id, q, args });
    });
  }

  /** Told at the end of this event-loop turn, with everything else told in it. */
  tell(t: Told): void {
    if (this.told === undefined) {
      this.told = [];
      setImmediate(() => this.flush());
    }
    this.told.push(t);
  }

  /** Sends what was told so far now (before the thread ends). */
  flush(): void {
    const told = this.told;
    this.told = undefined;
    if (told && told.length > 0) this.port.postMessage({ t: 'tell', told });
  }

  /** A stream for pino: whole lines, sent to the main thread's log stream. */
  logStream(): Writable {
    return new Writable({
      write: (chunk: Buffer | string, _enc, cb) => {
        this.tell({ k: 'log', lines: chunk.toString() });
        cb();
      },
    });
  }

  /** The NodeSide of a worker: `config` is the configuration in force in this worker. */
  node(config: () => Config): NodeSide {
    return {
      gate: { admit: (ip, draining) => this.ask('admit', ip, draining), release: (ip) => this.tell({ k: 'release', ip }) },
      rate: {
        messageOver: (ip) => config().inbound.message_rate_limit > 0 && this.ask('messageOver', ip),
        recipientOver: (user) => config().inbound.recipient_rate_limit > 0 && this.ask('recipientOver', user),
      },
      authThrottle: { lockedUntil: (ip) => this.ask('authLockedUntil', ip), failed: (ip) => this.ask('authFailed', ip) },
      verifyRecipient: async (address, domain) => (probedRoute(domain, config().routes) ? this.ask('verifyRecipient', address, domain) : { kind: 'accept' }),
      queueTrouble: () => this.trouble,
      accepted: (tenant) => this.tell({ k: 'accepted', tenant }),
      rejected: (reason) => this.tell({ k: 'rejected', reason }),
      connection: (kind) => this.tell({ k: 'connection', kind }),
    };
  }
}

/**
 * queue/port-server — answers the queue requests that come over a port
 * (queue/sqlite/worker-protocol) from a queue on this thread: how an SMTP
 * session worker (app/session-workers) reaches the PostgreSQL queue, whose
 * pool lives on the main thread. The worker's side is the same WorkerQueue
 * client it uses against the SQLite queue thread.
 *
 * The answers of one event-loop turn leave in one message. A `close` closes
 * the port, never the queue (the main thread owns it). Group commit and
 * durability are the queue's own (queue/group-commit): a resolved enqueue
 * means committed, so the answer means committed too.
 */
import type { MessagePort } from 'node:worker_threads';
import { HalcyonError } from '../errors.js';
import { dispatch, queueHandlers, type QueueParts } from './handlers.js';
import { isAttach, isList, type QueueAttach, type QueueRequests, type QueueResponse } from './sqlite/worker-protocol.js';

export function servePort(port: MessagePort, queue: QueueParts): void {
  const handlers = queueHandlers(queue, async () => undefined);
  let out: QueueResponse[] | undefined;
  const post = (res: QueueResponse): void => {
    if (out === undefined) {
      out = [];
      setImmediate(() => {
        const answers = out!;
        out = undefined;
        port.postMessage(answers.length === 1 ? answers[0] : answers);
      });
    }
    out.push(res);
  };
  port.on('message', (msg: QueueRequests | QueueAttach) => {
    if (isAttach(msg)) return;
    for (const req of isList(msg) ? msg : [msg]) {
      if (req.op === 'close') {
        post({ id: req.id, ok: true, result: undefined });
        continue;
      }
      dispatch(handlers, req).then(
        (result) => post({ id: req.id, ok: true, result }),
        (err: unknown) => post({
          id: req.id, ok: false,
          error: { code: err instanceof HalcyonError ? err.code : undefined, message: err instanceof Error ? err.message : String(err), detail: err instanceof HalcyonError ? err.detail : undefined },
        }),
      );
    }
  });
}

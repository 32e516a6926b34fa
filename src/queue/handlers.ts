/**
 * queue/handlers — the one table from a request of the queue protocol
 * (queue/sqlite/worker-protocol) to the queue method that answers it, for any
 * Queue: the SQLite queue thread (queue/sqlite/store-worker) and the main
 * thread serving a session worker's port over the PostgreSQL queue
 * (queue/port-server) both run it, so the two cannot answer differently.
 *
 * Turns a body that crossed a thread as a Uint8Array back into a Buffer.
 * Knows nothing of transactions, turns or ports: its callers do.
 */
import type { NewMessage } from './model.js';
import type { Queue } from './store.js';
import type { QueueHandlers, QueueRequest } from './sqlite/worker-protocol.js';

/** Structured clone turns Buffers into Uint8Arrays; the store wants Buffers back. */
export function revive(msg: NewMessage): NewMessage {
  const body = msg.body as Uint8Array;
  return { ...msg, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
}

export type QueueParts = Omit<Queue, 'health' | 'close'>;

/** One entry per op of the protocol; the compiler checks that none is missing and every type matches. `close` is the caller's. */
export function queueHandlers(queue: QueueParts, close: () => Promise<void>): QueueHandlers {
  const { messages: m, recipients: r, gate: g, events: e, verifications: v, tlsReports: t, suppressions: s, idempotency: k } = queue;
  return {
    enqueue: (msg) => m.enqueue(revive(msg)),
    enqueueGroup: (msgs, key) => m.enqueueGroup(msgs.map(revive), key),
    getMessage: (id) => m.getMessage(id),
    getBody: (id) => m.getBody(id),
    getForDelivery: (id) => m.getForDelivery(id),
    deleteMessages: (ids) => m.deleteMessages(ids),
    getRecipients: (id) => r.getRecipients(id),
    getAttempts: (id) => r.getAttempts(id),
    listMessages: (filter) => r.listMessages(filter),
    counts: () => r.counts(),
    shapeCounts: (at, bounds) => r.shapeCounts(at, bounds),
    senderShapeCounts: (at, bounds) => r.senderShapeCounts(at, bounds),
    tenantCounts: () => r.tenantCounts(),
    claimDue: (req) => r.claimDue(req),
    renewLeases: (ids, owner, until) => r.renewLeases(ids, owner, until),
    unclaim: (ids, owner, next) => r.unclaim(ids, owner, next),
    releaseExpiredLeases: (at) => r.releaseExpiredLeases(at),
    releaseNodeLeases: (owner, at) => r.releaseNodeLeases(owner, at),
    recordOutcomes: (outcomes, at, owner) => r.recordOutcomes(outcomes, at, owner),
    nextDueAt: () => r.nextDueAt(),
    parkDestination: (key, until, limit) => r.parkDestination(key, until, limit),
    flush: (opts) => r.flush(opts),
    setHeld: (id, held) => r.setHeld(id, held),
    claimWaiting: (id, c) => r.claimWaiting(id, c),
    claimExpirable: (before, c) => r.claimExpirable(before, c),
    claimDelayed: (before, c) => r.claimDelayed(before, c),
    claimReportsDue: (c) => r.claimReportsDue(c),
    markDsn: (ids, what) => r.markDsn(ids, what),
    removeCompleted: (limit) => r.removeCompleted(limit),
    acquire: (req) => g.acquire(req),
    renewSlot: (slot, until) => g.renewSlot(slot, until),
    releaseSlot: (slot) => g.releaseSlot(slot),
    releaseNodeSlots: (node) => g.releaseNodeSlots(node),
    releaseExpiredSlots: (at) => g.releaseExpiredSlots(at),
    transition: (key, expected, next) => g.transition(key, expected, next),
    takeToken: (key, at, rate) => g.takeToken(key, at, rate),
    getDestination: (key) => g.getDestination(key),
    listRows: (prefix) => g.listRows(prefix),
    listDestinations: () => g.listDestinations(),
    putDestination: (row) => g.putDestination(row),
    putLimits: (key, limits, at) => g.putLimits(key, limits, at),
    claimEvents: (sink, claim) => e.claimEvents(sink, claim),
    suppress: (entries) => s.suppress(entries),
    suppressed: (addresses, now) => s.suppressed(addresses, now),
    unsuppress: (addresses) => s.unsuppress(addresses),
    listSuppressions: (f) => s.listSuppressions(f),
    purgeSuppressions: (now) => s.purgeSuppressions(now),
    getIdempotency: (token, key, since) => k.getIdempotency(token, key, since),
    expireIdempotency: (before, limit) => k.expireIdempotency(before, limit),
    ackEvents: (ids) => e.ackEvents(ids),
    retryEvents: (ids, owner, next) => e.retryEvents(ids, owner, next),
    outboxDepth: () => e.outboxDepth(),
    getVerification: (address, at) => v.getVerification(address, at),
    putVerification: (entry) => v.putVerification(entry),
    deleteVerification: (address) => v.deleteVerification(address),
    listVerifications: (at, limit) => v.listVerifications(at, limit),
    removeExpiredVerifications: (at, limit) => v.removeExpiredVerifications(at, limit),
    countTlsSessions: (counts) => t.countTlsSessions(counts),
    claimTlsReports: (claim) => t.claimTlsReports(claim),
    finishTlsReport: (day, domain) => t.finishTlsReport(day, domain),
    retryTlsReport: (day, domain, owner, next) => t.retryTlsReport(day, domain, owner, next),
    tlsSessionCounts: (day) => t.tlsSessionCounts(day),
    close,
  };
}

/** Runs one request against a handler table. */
export function dispatch(handlers: QueueHandlers, req: QueueRequest): Promise<unknown> {
  // TypeScript cannot relate req.op to req.args across the union; the table's own type guarantees the pairing.
  const handler = handlers[req.op] as (...args: readonly unknown[]) => Promise<unknown>;
  return handler(...req.args);
}

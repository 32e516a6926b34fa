/**
 * scheduler/tenant-wait — what becomes of a tenant's batches claimed here
 * when destination/tenants says the tenant may not send now: they go back to
 * the queue, while the other tenants' batches for the same destination go on.
 * - Over its rate: due at the next token (unclaimed: no attempt, no history,
 *   nothing recorded; this node's claims leave the tenant out till then).
 * - Held (a suspend_tenant rule, an administrator): due now, and left out of
 *   every node's claims while the hold lasts (destination/tenants), so a
 *   resume lets them go at once; told why as mail waiting for a destination
 *   is (scheduler/record's
 *   settle: 451 4.7.0 `tenant=NAME suspended at SCOPE …`, the last real reply
 *   kept where there is one), and one log line a postmaster can grep.
 * Does not decide whether the tenant may send (destination/tenants does).
 */
import type { Logger } from 'pino';
import type { TenantWait } from '../destination/tenants.js';
import { NEVER } from '../queue/destination-gate.js';
import type { RecipientQueue } from '../queue/recipient-queue.js';
import type { Batch } from './batches.js';
import type { Recorder } from './record.js';

export interface GiveBackDeps {
  readonly recipients: Pick<RecipientQueue, 'unclaim'>;
  readonly recorder: Pick<Recorder, 'settle'>;
  readonly log: Logger;
  /** This node's id: the owner of the leases given back. */
  readonly node: string;
}

/** `batches` (one tenant's, claimed here for `destination`) go back to the queue, as `wait` says. */
export async function giveBack(deps: GiveBackDeps, destination: string, batches: readonly Batch[], wait: TenantWait, now: number): Promise<void> {
  if (wait.reason === 'rate') {
    await deps.recipients.unclaim(batches.flatMap((b) => b.recipients.map((r) => r.id)), deps.node, wait.until);
    return;
  }
  const { hold } = wait;
  const until = hold.until === NEVER ? undefined : hold.until;
  const text = `tenant=${hold.tenant} suspended at ${hold.scope}${until !== undefined ? ` until ${new Date(until).toISOString()}` : ''}: ${hold.why}`;
  await deps.recorder.settle(undefined, new Map(), now, batches, { code: 451, enhanced: '4.7.0', text, ours: true });
  const n = batches.reduce((sum, b) => sum + b.recipients.length, 0);
  deps.log.info({
    event: 'tenant_held', tenant: hold.tenant, destination, scope: hold.scope, recipients: n, why: hold.why,
    ...(until !== undefined ? { until: new Date(until).toISOString() } : {}),
  }, `${destination}: ${n} recipient(s) wait: ${text}`);
}

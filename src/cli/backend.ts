/**
 * cli/backend — the data_dir store as a CLI backend, for when the server does
 * not answer (or `--direct`): the same `AdminApi` as the running server's
 * admin API (cli/admin-client), on the SQLite file or the shared PostgreSQL
 * queue. Loaded by cli/admin-client only when it is needed.
 *
 * Does not probe the server and does not format output.
 */
import type { Config } from '../config/schema.js';
import { openDirectQueue } from './direct-queue.js';
import { sizeBytes } from '../config/units.js';
import { unixActor } from '../http/actor.js';
import { Admin, type AdminDeps } from '../http/admin.js';
import { loadBounceClassifier } from '../config/bounce-rules-file.js';
import type { BounceClassifier } from '../smtp/bounce-rules.js';
import type { DkimKey } from '../intake/dkim.js';
import type { Queue } from '../queue/store.js';
import type { Backend, BackendOptions } from './admin-client.js';

/** The store file itself; with `injection`, sendmail queues mail while the server is stopped (delivered when it starts). */
class DirectBackend extends Admin implements Backend {
  readonly kind = 'direct';
  constructor(cfg: Config, private readonly store: Queue, more: Pick<AdminDeps, 'intake' | 'directory' | 'onAction'>) {
    let classifier: BounceClassifier | undefined;
    super({
      store, clock: Date.now, config: () => cfg, maxMessageSize: () => sizeBytes(cfg.smtp.max_message_size), actor: unixActor(),
      classify: (r) => (classifier ??= loadBounceClassifier(cfg.bounces.rules)).classify(r),
      ...more,
    });
  }
  close(): Promise<void> { return this.store.close(); }
}

/**
 * What a command that changes the queue needs beside the store, loaded only for it (a listing loads
 * none of it): the admin log line (no server log while it is stopped: DATA_DIR/admin.log, http/audit)
 * and, for 'create' (sendmail), the recipient directory and intake that injection goes through.
 */
async function forChanges(cfg: Config, store: Queue, access: BackendOptions['access']): Promise<Pick<AdminDeps, 'intake' | 'directory' | 'onAction'>> {
  if (access === 'readonly') return {};
  const { directAuditLog } = await import('../http/audit.js');
  const onAction = directAuditLog(cfg.data_dir, cfg.log_format, cfg.log.time);
  if (access !== 'create') return { onAction };
  const [{ Intake }, { loadDkimKeys }, { createDirectory }, { Mailboxes }] = await Promise.all([
    import('../intake/intake.js'), import('../intake/dkim-keys.js'), import('../inbound/directory.js'), import('../local/maildir.js'),
  ]);
  const mailboxes = new Mailboxes(cfg.domains, cfg.data_dir, { hostname: cfg.hostname });
  // Keys are read when a message is first injected, so a bad key stops only that.
  let keys: DkimKey[] | undefined;
  return {
    onAction,
    intake: new Intake({ store: store.messages, hostname: () => cfg.hostname, clock: Date.now, dkimKeys: () => (keys ??= loadDkimKeys(cfg.dkim)), tenantOf: (user) => cfg.users.find((u) => u.name === user)?.tenant ?? user }),
    directory: () => createDirectory(cfg, mailboxes),
  };
}

/**
 * The store file itself. Only 'create' (sendmail) may make a queue; 'readonly' and 'existing' throw
 * NoQueueError where there is none, and neither writes the queue's marker (that is the server's).
 */
export async function openDirectBackend(cfg: Config, access: BackendOptions['access']): Promise<Backend> {
  const store = await openDirectQueue(cfg, access);
  return new DirectBackend(cfg, store, await forChanges(cfg, store, access));
}

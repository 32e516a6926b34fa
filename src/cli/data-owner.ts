/**
 * cli/data-owner — a command run as root that writes into the data
 * directory (sendmail while the server is stopped, queue actions on the
 * store file, queue migrate and salvage) runs as the directory's owner from
 * then on, so every file it creates (queue.db and its WAL, spool segments,
 * admin.log, the queue marker) belongs to the user the server runs as.
 * Before, a root `sendmail` made a root-owned queue and the server, running
 * as its own user, then failed to start with "readonly database".
 *
 * Does nothing when not root, when the directory does not exist yet, or when
 * root owns it. Call it after the config is read and before the first file
 * is opened; files read later (DKIM keys) are read as that user, as the
 * server reads them.
 */
import { statSync } from 'node:fs';

/** The uid/gid the command now runs as, or undefined when it kept its own. */
export function actAsDataDirOwner(dataDir: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0 || !process.setuid || !process.setgid) return undefined;
  let st;
  try {
    st = statSync(dataDir);
  } catch {
    return undefined;
  }
  if (st.uid === 0) return undefined;
  // Supplementary groups first (root's would stay otherwise), then the group, then the user (after which nothing can be changed back).
  process.setgroups?.([st.gid]);
  process.setgid(st.gid);
  process.setuid(st.uid);
  return { uid: st.uid, gid: st.gid };
}

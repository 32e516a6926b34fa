/**
 * cli/verify-cmd — `halcyon verify list | show ADDRESS | forget ADDRESS`: the
 * recipient verification cache (queue/verify-cache, docs/operations.md), read
 * and edited in the queue itself (the SQLite file beside a running server —
 * WAL makes that safe — or the shared PostgreSQL database, every node's
 * cache at once). `forget` makes the next RCPT for the address probe again
 * (a user just created behind a route that was cached as unknown).
 *
 * Does not probe (the server does, at RCPT) and decides nothing.
 */
import { configFileFrom, loadConfig } from '../config/load.js';
import { verifyKey } from '../inbound/verify-policy.js';
import type { VerifyEntry } from '../queue/verify-cache.js';
import { withDirectQueue } from './direct-queue.js';
import { age, printable } from './format.js';

/** Most rows `list` prints. */
const LIST_LIMIT = 10_000;

export function formatVerifications(rows: readonly VerifyEntry[], now: number): string {
  if (rows.length === 0) return 'no cached verification answers\n';
  const lines = [['ADDRESS', 'VERDICT', 'CHECKED', 'REFRESH IN', 'EXPIRES IN', 'REPLY']];
  for (const r of rows) {
    const inTime = (t: number): string => (t <= now ? 'due' : age(t - now));
    const reply = `${r.reply.code}${r.reply.enhanced ? ` ${r.reply.enhanced}` : ''} ${r.reply.text}`;
    lines.push([printable(r.address), r.verdict, `${age(now - r.checkedAt)} ago`, inTime(r.refreshAt), inTime(r.expiresAt), printable(reply)]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** `halcyon verify list`. */
export async function verifyList(opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig(configFileFrom(opts.config));
  const now = Date.now();
  const rows = await withDirectQueue(cfg, 'readonly', (q) => q.verifications.listVerifications(now, LIST_LIMIT));
  if (rows) process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : formatVerifications(rows, now));
}

/** `halcyon verify show ADDRESS`. */
export async function verifyShow(address: string, opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig(configFileFrom(opts.config));
  const now = Date.now();
  const found = await withDirectQueue(cfg, 'readonly', async (q) => ({ row: await q.verifications.getVerification(verifyKey(address), now) }));
  if (!found) return;
  if (!found.row) {
    process.stderr.write(`halcyon: no cached answer for ${printable(address)}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(opts.json ? `${JSON.stringify(found.row, null, 2)}\n` : formatVerifications([found.row], now));
}

/** `halcyon verify forget ADDRESS`. */
export async function verifyForget(address: string, opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = loadConfig(configFileFrom(opts.config));
  const gone = await withDirectQueue(cfg, 'existing', (q) => q.verifications.deleteVerification(verifyKey(address)));
  if (gone === undefined) return;
  if (opts.json) process.stdout.write(`${JSON.stringify({ address: verifyKey(address), forgotten: gone })}\n`);
  else process.stdout.write(gone ? `forgot the cached answer for ${printable(verifyKey(address))}\n` : `no cached answer for ${printable(verifyKey(address))}\n`);
}

/**
 * cli/queue-repair — `halcyon queue check` and `halcyon queue salvage`, for a
 * queue the server refused to start on (queue/sqlite/check, queue/sqlite/salvage).
 *
 * `check` runs SQLite's quick_check on the data_dir's queue and looks for a
 * queue file that lost its data; exit 0 when fit, 1 when not. `salvage`
 * (server stopped) copies what can be read into a fresh queue, keeps the
 * damaged file beside it and lists every message it could not read; exit 0
 * when everything was copied, 1 when some messages were lost. Both work on
 * the file directly, never through the admin API.
 */
import { ConfigError, configFileFrom, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { checkQueue } from '../queue/sqlite/check.js';
import { salvageQueue } from '../queue/sqlite/salvage.js';
import { runningServer } from './admin-client.js';
import { actAsDataDirOwner } from './data-owner.js';

function config(file: string | undefined): Config | undefined {
  try {
    return loadConfig(configFileFrom(file));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`${err.file ?? 'config'}: ${p.path}: ${p.message}\n`);
    process.exitCode = 2;
    return undefined;
  }
}

/** `halcyon queue check`. */
export function queueCheck(opts: { config?: string; json?: boolean }): void {
  const cfg = config(opts.config);
  if (!cfg) return;
  const c = checkQueue(cfg.data_dir);
  if (opts.json) process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
  else {
    const word = { fresh: 'no queue yet (fresh data_dir)', ok: 'ok', damaged: 'DAMAGED', lost: 'LOST ITS DATA' }[c.status];
    process.stdout.write(`${c.file}: ${word}\n${c.problems.map((p) => `  ${p}\n`).join('')}`);
    if (c.status === 'damaged' || c.status === 'lost') process.stdout.write('Stop the server and run `halcyon queue salvage` to copy what can be read into a fresh queue.\n');
  }
  process.exitCode = c.status === 'damaged' || c.status === 'lost' ? 1 : 0;
}

/** `halcyon queue salvage`. */
export async function queueSalvage(opts: { config?: string; json?: boolean }): Promise<void> {
  const cfg = config(opts.config);
  if (!cfg) return;
  if (await runningServer(cfg)) {
    process.stderr.write('halcyon: the server is running; stop it before salvaging its queue\n');
    process.exitCode = 2;
    return;
  }
  actAsDataDirOwner(cfg.data_dir);
  const r = salvageQueue(cfg.data_dir);
  if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    let out = r.keptAs ? `damaged queue kept as ${r.keptAs}\n` : 'there was no queue file; a fresh queue was written\n';
    out += `salvaged: ${r.messages} message(s), ${r.recipients} recipient(s), ${r.attempts} attempt record(s), ${r.destinations} destination(s)\n`;
    out += `lost: ${r.lost.length} message(s)\n`;
    for (const l of r.lost) out += `  ${l.id}: ${l.why}${l.sender !== undefined ? ` from=<${l.sender}>` : ''}${l.recipients?.length ? ` to=${l.recipients.map((a) => `<${a}>`).join(',')}` : ''}\n`;
    if (r.damagedScans.length) out += `damage met while reading (${r.damagedScans.length} scan(s) stopped early)\n`;
    process.stdout.write(out);
  }
  process.exitCode = r.lost.length > 0 ? 1 : 0;
}

/**
 * cli/newaliases — `halcyon newaliases` (also the bin run by the name
 * `newaliases`), what a Postfix postmaster types after editing the aliases
 * file. Halcyon keeps no compiled aliases.db: the server reads the text file
 * itself, and sees a change by itself within `[aliases] check_interval`.
 * So newaliases is the "now, and tell me what is wrong" of it:
 *
 * - a server answering on the admin listener reads the file again at once
 *   (POST /api/aliases/reload, an audited admin action) and its report is
 *   printed;
 * - with none answering, the file is read here and checked, and nothing is
 *   written: the server reads it when it starts.
 *
 * Prints `FILE: N aliases` on stdout and each refused entry (a command or a
 * file target, a bad line, a duplicate, an unreadable include) on stderr as
 * a warning. Exit 0 when the file was read (warnings or not), 1 when no
 * aliases file is configured or it cannot be read (the aliases in force
 * stay), 2 for an invalid config file.
 */
import { ConfigError, configFileFrom } from '../config/file.js';
import { AdminError } from '../http/admin-api.js';
import type { AliasReport } from '../local/alias-source.js';
import { runningServerOf } from './admin-client.js';

export async function newaliases(opts: { config?: string }): Promise<void> {
  const f = configFileFrom(opts.config);
  let report: AliasReport;
  let where: string;
  try {
    const server = await runningServerOf(f);
    if (server) {
      report = await server.reloadAliases();
      where = `in force on the running server (${server.base})`;
    } else {
      const cfg = (await import('../config/load.js')).loadConfig(f);
      if (cfg.aliases.file === undefined) throw new AdminError('bad_request', 'no aliases file is configured ([aliases] file)');
      const { AliasSource } = await import('../local/alias-source.js');
      report = new AliasSource(cfg.aliases.file).load('newaliases');
      where = 'checked; no server answering: it reads the file when it starts';
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${err.file ?? 'config'}: ${p.path}: ${p.message}\n`);
      process.exitCode = 2;
      return;
    }
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`newaliases: ${e.code && !(err instanceof AdminError) ? `${e.path ?? ''}: ${e.code}` : e.message}\n`);
    process.exitCode = 1;
    return;
  }
  for (const p of report.problems) process.stderr.write(`newaliases: warning: ${p}\n`);
  process.stdout.write(`${report.file}: ${report.aliases} aliases (${where})\n`);
}

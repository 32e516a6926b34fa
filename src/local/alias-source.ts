/**
 * local/alias-source — the aliases file in force on a running server
 * (config `[aliases] file`): the table local/aliases-file made of it, read
 * again when the file or a file it includes changes (checked every
 * `[aliases] check_interval` by modification time, size and inode, so an
 * editor's rename-over is seen as well as an in-place write), when
 * `halcyon newaliases` asks (admin API POST /api/aliases/reload), and on
 * SIGHUP (app reload).
 *
 * A file that cannot be read keeps the table in force (logged as
 * `aliases_failed`); refused entries are logged one line each
 * (`aliases_refused`) whenever the file is read. Decides no delivery:
 * local/maildir's Mailboxes asks `get(localPart)`.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatProblem, loadAliases, type AliasTable } from './aliases-file.js';

/** The lines an alias load writes (pino's shape; the app passes its logger). */
export interface AliasLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What a load found: for the log, `halcyon newaliases` and the admin API. */
export interface AliasReport {
  readonly file: string;
  /** Names in the table now in force. */
  readonly aliases: number;
  /** Refused entries and targets, "file:line: why". */
  readonly problems: readonly string[];
}

const EMPTY: AliasTable = { aliases: new Map(), problems: [], files: [] };

/** One file's identity and version: a change of any part means "read it again". Missing is a state too. */
function signatureOf(files: readonly string[]): string {
  return files.map((f) => {
    try {
      const s = statSync(f);
      return `${f}:${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      return `${f}:${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`;
    }
  }).join('|');
}

export class AliasSource {
  readonly file: string;
  private table: AliasTable = EMPTY;
  private signature = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(file: string, private readonly log?: AliasLog) {
    this.file = resolve(file);
  }

  /** The targets of a local part (any case), or undefined when the file has no such name. */
  get(localPart: string): readonly string[] | undefined {
    return this.table.aliases.get(localPart.toLowerCase());
  }

  get report(): AliasReport {
    return { file: this.file, aliases: this.table.aliases.size, problems: this.table.problems.map(formatProblem) };
  }

  /**
   * Reads the file now (and its includes). Throws when the aliases file itself cannot be read; the
   * table in force then stays. `why` goes on the log line ("start", "changed", "newaliases", "reload").
   */
  load(why: string): AliasReport {
    // The signature is taken before reading: a write during the read is seen by the next check.
    const before = signatureOf([this.file, ...this.table.files.filter((f) => f !== this.file)]);
    let table: AliasTable;
    try {
      table = loadAliases(this.file);
    } catch (err) {
      this.signature = before;
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.log?.error({ event: 'aliases_failed', file: this.file, why, err: code }, `aliases: ${this.file} cannot be read (${code}); the aliases in force stay`);
      throw err;
    }
    this.table = table;
    this.signature = signatureOf(table.files);
    for (const p of table.problems) {
      this.log?.warn({ event: 'aliases_refused', file: p.file, line: p.line, problem: p.message }, `aliases: ${formatProblem(p)}`);
    }
    this.log?.info({ event: 'aliases_loaded', file: this.file, why, aliases: table.aliases.size, refused: table.problems.length },
      `aliases: ${this.file}: ${table.aliases.size} alias(es)${table.problems.length ? `, ${table.problems.length} problem(s)` : ''} (${why})`);
    return this.report;
  }

  /** Reads the file again if it (or an include) changed since the last read; false when nothing changed. */
  reloadIfChanged(): boolean {
    const files = this.table.files.length > 0 ? this.table.files : [this.file];
    if (signatureOf(files) === this.signature) return false;
    try {
      this.load('changed');
    } catch {
      // Logged by load; the table in force stays, and the next change is looked for.
    }
    return true;
  }

  /** Checks for a change every `intervalMs` (the timer does not keep the process alive). */
  watch(intervalMs: number): void {
    this.close();
    this.timer = setInterval(() => this.reloadIfChanged(), intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * The source a configuration asks for: none without `[aliases] file`; the one in force (`prev`) when the
 * path is the same, read again (`why`: a SIGHUP re-reads, and a failure there keeps its table); else a
 * new one, read now (it throws when the file cannot be read: a start or reload then fails whole).
 */
export function aliasSourceFor(file: string | undefined, log: AliasLog | undefined, prev: AliasSource | undefined, why: string): AliasSource | undefined {
  if (file === undefined) return undefined;
  if (prev && prev.file === resolve(file)) {
    try {
      prev.load(why);
    } catch {
      // Logged by load: the aliases in force stay.
    }
    return prev;
  }
  const source = new AliasSource(file, log);
  source.load(why);
  return source;
}

/** `config check`'s and serve's start check: an aliases file that is set must be readable. */
export function aliasFileProblems(file: string | undefined): { path: string; message: string }[] {
  if (file === undefined) return [];
  try {
    loadAliases(file);
    return [];
  } catch (err) {
    return [{ path: 'aliases.file', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }];
  }
}

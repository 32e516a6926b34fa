/**
 * local/aliases-file — reads an aliases file in /etc/aliases format into a
 * table of local part → targets, for every local domain (config
 * `[aliases] file`; local/maildir's Mailboxes consults it after a domain's
 * own `aliases`).
 *
 * The format, as aliases(5) has it:
 *
 *   # a comment (a line whose first non-blank character is #)
 *   postmaster: root
 *   team:  alice, bob,
 *          carol@elsewhere.example      (a line that starts with blanks continues the entry)
 *   list:  :include:/etc/halcyon/list.txt
 *   "Quoted": bob                (a quoted name; names are matched in any case)
 *
 * A name is a local part (matched in any case); a target is a local user
 * (the recipient's own domain is added) or a full address. `:include:FILE`
 * takes the addresses in FILE (the same list syntax, over any number of
 * lines; `#` comments; a relative path is taken from the aliases file's
 * directory); includes nest at most MAX_INCLUDE_DEPTH deep and an include of
 * a file already being read is refused.
 *
 * What is NOT done, on purpose: delivery to a command (`|cmd`) or a file
 * (`/path`). Such a target is refused — left out of the table, with a
 * problem naming the file and line — and an alias left with no target then
 * refuses its mail at RCPT (550 5.1.1) rather than accepting it for nobody.
 * A name given twice keeps its first entry (Postfix's postalias does the same,
 * with a warning); the second is a problem. Problems never stop the file from
 * loading: only a file that cannot be read does (it throws). Pure but for
 * reading files through `read`; loads nothing else, decides no delivery.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export const MAX_INCLUDE_DEPTH = 5;

export interface AliasProblem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export interface AliasTable {
  /** Lower-cased local part → targets, in the file's order, de-duplicated. */
  readonly aliases: ReadonlyMap<string, readonly string[]>;
  /** Entries and targets that were refused, and why. */
  readonly problems: readonly AliasProblem[];
  /** Every file read or tried (the aliases file first, then its includes): what a change check watches. */
  readonly files: readonly string[];
}

export const formatProblem = (p: AliasProblem): string => `${p.file}:${p.line}: ${p.message}`;

/** A logical line: its text (continuations joined) and the number of its first physical line. */
interface Logical { readonly text: string; readonly line: number }

/** aliases(5)'s lines: blanks and `#` lines skipped, a line that starts with a blank continues the one before. */
function logicalLines(text: string): Logical[] {
  const out: { text: string; line: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (/^\s*(#|$)/.test(raw)) return;
    const last = out[out.length - 1];
    if (/^\s/.test(raw) && last) last.text += ` ${raw.trim()}`;
    else out.push({ text: raw.trim(), line: i + 1 });
  });
  return out;
}

/** Splits at commas outside double quotes; each piece trimmed, empty ones dropped. */
function splitList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

const unquote = (s: string): string => (s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);
const ADDRESS = /^([^\s<>(),;:"@]+|"[^"]+")(@[^\s<>(),;:"@]+)?$/;

class Reader {
  readonly problems: AliasProblem[] = [];
  readonly files: string[] = [];
  constructor(private readonly read: (path: string) => string) {}

  problem(file: string, line: number, message: string): void {
    this.problems.push({ file, line, message });
  }

  /** The addresses one list names (an entry's value, or an included file's text), includes followed. */
  targets(list: string, file: string, line: number, stack: readonly string[]): string[] {
    const out: string[] = [];
    for (const item of splitList(list)) {
      const bare = unquote(item.replace(/^<(.*)>$/, '$1'));
      const include = /^:include:\s*(.+)$/i.exec(bare);
      if (include) out.push(...this.include(resolve(dirname(file), include[1]!.trim()), file, line, stack));
      else if (bare.startsWith('|')) this.problem(file, line, `"${bare}": delivery to a command is not supported: target refused`);
      else if (bare.startsWith('/')) this.problem(file, line, `"${bare}": delivery to a file is not supported: target refused`);
      else if (!ADDRESS.test(bare) || bare.length > 254) this.problem(file, line, `"${item}": not an address or local user: target refused`);
      else out.push(bare);
    }
    return out;
  }

  private include(path: string, from: string, line: number, stack: readonly string[]): string[] {
    if (stack.includes(path)) {
      this.problem(from, line, `:include:${path} includes itself (through ${stack.join(' → ')}): refused`);
      return [];
    }
    if (stack.length > MAX_INCLUDE_DEPTH) {
      this.problem(from, line, `:include:${path}: includes nest deeper than ${MAX_INCLUDE_DEPTH}: refused`);
      return [];
    }
    if (!this.files.includes(path)) this.files.push(path);
    let text: string;
    try {
      text = this.read(path);
    } catch (err) {
      this.problem(from, line, `:include:${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): its addresses are left out`);
      return [];
    }
    const out: string[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
      if (/^\s*(#|$)/.test(raw)) return;
      out.push(...this.targets(raw, path, i + 1, [...stack, path]));
    });
    return out;
  }
}

/** Parses the text of the aliases file `file` (includes are read through `read`). */
export function parseAliases(text: string, file: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): AliasTable {
  const r = new Reader(read);
  const main = resolve(file);
  r.files.push(main);
  const aliases = new Map<string, string[]>();
  const firstLine = new Map<string, number>();
  for (const { text: entry, line } of logicalLines(text)) {
    const m = /^("[^"]*"|[^:]*):(.*)$/.exec(entry);
    const name = m ? unquote(m[1]!.trim()).toLowerCase() : '';
    if (!m || name === '') {
      r.problem(main, line, `"${entry.slice(0, 60)}": expected "name: target, target": entry refused`);
      continue;
    }
    if (/[@\s]/.test(name)) {
      r.problem(main, line, `"${name}": an alias name is a local part (no "@" or blanks; the file applies to every local domain): entry refused`);
      continue;
    }
    const targets = [...new Set(r.targets(m[2]!, main, line, [main]))];
    if (firstLine.has(name)) {
      r.problem(main, line, `"${name}": duplicate entry: the first (line ${firstLine.get(name)}) is kept`);
      continue;
    }
    firstLine.set(name, line);
    if (targets.length === 0 && m[2]!.trim() === '') r.problem(main, line, `"${name}": no target: its mail is refused`);
    aliases.set(name, targets);
  }
  return { aliases, problems: r.problems, files: r.files };
}

/** Reads and parses the aliases file; throws (ENOENT, EACCES …) when the file itself cannot be read. */
export function loadAliases(file: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): AliasTable {
  return parseAliases(read(resolve(file)), file, read);
}

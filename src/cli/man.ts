/**
 * cli/man — the halcyon(8) man page, made from the commander definitions
 * (cli/program: every command, argument and option with its description)
 * and the config schema's rows (config/docs: every setting with its type,
 * default and meaning), plus a few fixed sections (files, signals, exit
 * status, see also). scripts/gen-docs writes it to man/halcyon.8 and a test
 * checks the file is current, as docs/configuration.md is checked; so the
 * page cannot drift from `--help` or the schema.
 *
 * Pure: a string from its inputs (no date on the page, so the output is the
 * same on every run). Loads no server module.
 */
import type { Command, Option } from 'commander';
import type { Row } from '../config/docs.js';

/**
 * Text for roff: backslashes and hyphens escaped, every character beyond ASCII as groff's `\[uXXXX]`
 * (roff input is ASCII), a leading dot or quote made literal, `code` in bold.
 */
export function roff(text: string): string {
  const escaped = text.replace(/\\/g, '\\e').replace(/-/g, '\\-')
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
  const bolded = escaped.replace(/`([^`]+)`/g, '\\fB$1\\fR');
  return bolded.split('\n').map((l) => (/^[.']/.test(l) ? `\\&${l}` : l)).join('\n');
}

/** `queue list`, `config show [keys...]` — the words that reach a command, with its arguments. */
function usageOf(cmd: Command, path: readonly string[]): string {
  const args = cmd.registeredArguments.map((a) => {
    const n = `${a.name()}${a.variadic ? '...' : ''}`;
    return a.required ? `<${n}>` : `[${n}]`;
  });
  return [...path, ...args].join(' ');
}

function optionLines(opts: readonly Option[]): string[] {
  const out: string[] = [];
  for (const o of opts) {
    if (o.hidden) continue;
    out.push('.TP', `.B ${roff(o.flags)}`, roff(`${o.description}${o.defaultValue !== undefined && o.defaultValue !== false ? ` (default: ${String(o.defaultValue)})` : ''}`));
  }
  return out;
}

/** Every command below `cmd` in definition order, depth first, with its word path. */
export function commandsOf(cmd: Command, path: readonly string[] = []): { cmd: Command; path: string[] }[] {
  const out: { cmd: Command; path: string[] }[] = [];
  for (const sub of cmd.commands) {
    const p = [...path, sub.name()];
    out.push({ cmd: sub, path: p }, ...commandsOf(sub, p));
  }
  return out;
}

export function manPage(program: Command, rows: readonly Row[], version: string): string {
  const lines: string[] = [
    `.\\" halcyon(8), generated from src/cli/program.ts and src/config/schema.ts by scripts/gen-docs; do not edit.`,
    `.TH HALCYON 8 "" "halcyon ${version}" "System Manager's Manual"`,
    '.SH NAME',
    `halcyon \\- ${roff(program.description().replace(/^Halcyon, /, ''))}`,
    '.SH SYNOPSIS',
    '.B halcyon',
    '.I command',
    '[\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.br',
    '.B mailq',
    '.br',
    '.B newaliases',
    '.br',
    '.B sendmail',
    '[\\fIoptions\\fR] [\\fIrecipient\\fR ...]',
    '.SH DESCRIPTION',
    roff('Halcyon accepts mail over SMTP, keeps it in a durable queue (SQLite under `data_dir`, or PostgreSQL shared by several nodes) and delivers it to the destinations\' mail exchangers, to local Maildir mailboxes or over LMTP, retrying politely: no remote host is ever stormed. `halcyon serve` runs the server; the other commands talk to a running server through its admin API, or work on `data_dir` when it is stopped.'),
    '.PP',
    roff('Run as `mailq`, `newaliases` or `sendmail` (a link to the bin), it is that command, as Postfix users expect.'),
    '.SH COMMANDS',
  ];
  for (const { cmd, path } of commandsOf(program)) {
    // A command that only groups others (`queue`, `config`) is described by its subcommands.
    lines.push('.SS', `.B halcyon ${roff(usageOf(cmd, path))}`, roff(cmd.description()));
    if (cmd.options.length > 0) lines.push('.RS', ...optionLines(cmd.options), '.RE');
  }
  lines.push('.SH OPTIONS', ...optionLines(program.options), '.TP', '.B \\-h, \\-\\-help', 'display help for a command (`halcyon help COMMAND` too)');
  lines.push(
    '.SH CONFIGURATION',
    roff('One TOML file, given with `--config FILE` (or `-c`) or `HALCYON_CONFIG`; without one, embedded defaults. Unknown keys are errors; `halcyon config check` checks a file as `serve` would, `halcyon config show KEY` prints a setting in force (like postconf). Durations: "500ms", "15m", "4h", "5d". Sizes: "35MiB", "100MB", "512k", or bytes. Every setting:'),
  );
  for (const r of rows) {
    lines.push('.TP', `.B ${roff(r.key)}`, roff(`${r.type}${r.def && r.def !== '—' ? `, default ${r.def}` : ''}. ${r.meaning}`));
  }
  lines.push(
    '.SH FILES',
    '.TP', '.I /etc/halcyon/halcyon.toml', 'the configuration (scripts/install.sh creates it, readable by the \\fBhalcyon\\fR group)',
    '.TP', '.I /etc/halcyon/aliases', roff('an aliases file in /etc/aliases format, when `[aliases] file` names it'),
    '.TP', '.I /var/lib/halcyon', roff('`data_dir`: the queue, local mailboxes, the generated TLS certificate, admin.log (the systemd unit\'s StateDirectory)'),
    '.SH SIGNALS',
    '.TP', '.B SIGTERM, SIGINT', roff('stop: new connections get 421, transactions and deliveries in progress finish (`serve --drain-timeout`), exit 0'),
    '.TP', '.B SIGHUP', roff('read the config file (and the aliases file) again; an invalid file is refused and logged, the running configuration stays'),
    '.SH EXIT STATUS',
    roff('0 on success; 1 on an error; 2 on a usage or configuration error; 3 when a message or setting asked for does not exist; `sendmail` follows sysexits.h (64, 67, 75).'),
    '.SH SEE ALSO',
    '.BR postfix (1),',
    '.BR mailq (1),',
    '.BR newaliases (1),',
    '.BR aliases (5),',
    '.BR systemd.exec (5).',
    roff('The documentation in the package: README.md, docs/operations.md, docs/configuration.md.'),
    '',
  );
  return lines.join('\n');
}

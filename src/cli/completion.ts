/**
 * cli/completion — bash and zsh completion scripts for `halcyon`, made from
 * the commander definitions (cli/program): the commands at each level, each
 * command's options, and the values of the few options that take one of a
 * known list (`--by`, `--state` …) or a file (`--config`, `--out`).
 * scripts/gen-docs writes them to completions/halcyon.bash and
 * completions/_halcyon (a test checks they are current, and runs them);
 * `halcyon completion bash|zsh` prints the same text.
 *
 * The scripts find the command being typed by walking the words before the
 * cursor and keeping those that extend a known command path ("queue",
 * "queue list"), so option values in between are skipped. Pure string
 * building; loads no server module.
 */
import type { Command } from 'commander';
import { SHAPE_BY } from '../http/queue-shape.js';
import { RECIPIENT_STATES } from '../queue/model.js';
import { commandsOf } from './man.js';

/** Values of options that take one of a list (the same lists the commands check). */
const VALUES: Readonly<Record<string, readonly string[]>> = {
  '--by': SHAPE_BY,
  '--state': RECIPIENT_STATES,
  '--algorithm': ['rsa-sha256', 'ed25519-sha256'],
  '--log-format': ['json', 'pretty'],
};
/** Options whose value is a file name. */
const FILE_OPTIONS = ['-c', '--config', '--out'];

interface Level { readonly path: string; readonly subs: { name: string; about: string }[]; readonly opts: { flag: string; about: string }[] }

function levels(program: Command): Level[] {
  const all = [{ cmd: program, path: [] as string[] }, ...commandsOf(program)];
  return all.map(({ cmd, path }) => ({
    path: path.join('/'),
    subs: cmd.commands.map((c) => ({ name: c.name(), about: c.description() })),
    opts: [
      ...cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)).map((flag) => ({ flag, about: o.description }))),
      { flag: '--help', about: 'display help for command' },
    ],
  }));
}

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const firstSentence = (s: string): string => s.replace(/\s+/g, ' ').split(/[.;:(]/)[0]!.trim().slice(0, 70);

const HEADER = '# generated from src/cli/program.ts by scripts/gen-docs (or `halcyon completion`); do not edit.';

export function bashCompletion(program: Command): string {
  const ls = levels(program);
  const paths = ls.map((l) => l.path).filter(Boolean).join(' ');
  const cases = ls.map((l) => `    ${shQuote(l.path)}) subs=${shQuote(l.subs.map((s) => s.name).join(' '))}; opts=${shQuote(l.opts.map((o) => o.flag).join(' '))} ;;`);
  const values = Object.entries(VALUES).map(([flag, vs]) => `    ${flag}) COMPREPLY=($(compgen -W ${shQuote(vs.join(' '))} -- "$cur")); return 0 ;;`);
  return [
    '# bash completion for halcyon (and its links mailq, newaliases)',
    HEADER,
    `_halcyon_paths=${shQuote(paths)}`,
    '_halcyon() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i',
    '  [ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  # The command path: the words before the cursor that extend a known one (option values are skipped).',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w="${COMP_WORDS[i]}"',
    '    case " $_halcyon_paths " in *" ${path:+$path/}$w "*) path="${path:+$path/}$w" ;; esac',
    '  done',
    '  case "$prev" in',
    `    ${FILE_OPTIONS.join('|')}) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;`,
    ...values,
    '  esac',
    '  local subs="" opts=""',
    '  case "$path" in',
    ...cases,
    '  esac',
    '  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -W "$subs" -- "$cur")); fi',
    '  return 0',
    '}',
    'complete -F _halcyon halcyon',
    '',
  ].join('\n');
}

export function zshCompletion(program: Command): string {
  const ls = levels(program);
  const paths = ls.map((l) => l.path).filter(Boolean).join(' ');
  const esc = (s: string) => s.replace(/:/g, '\\:');
  const arr = (items: string[]) => `(${items.map(shQuote).join(' ')})`;
  const cases = ls.map((l) => `    (${shQuote(l.path)}) subs=${arr(l.subs.map((s) => `${s.name}:${esc(firstSentence(s.about))}`))}; opts=${arr(l.opts.map((o) => `${o.flag}:${esc(firstSentence(o.about))}`))} ;;`);
  const values = Object.entries(VALUES).map(([flag, vs]) => `    (${flag}) values=${arr([...vs])}; return 0 ;;`);
  return [
    '#compdef halcyon',
    '# zsh completion for halcyon: put this file (_halcyon) in a directory on $fpath.',
    HEADER,
    `_halcyon_paths=${shQuote(paths)}`,
    '# Sets subs, opts (name:description) and values (or files=1) for the words typed so far; no output.',
    '_halcyon_candidates() {',
    '  local p="" w i',
    '  subs=() opts=() values=() files=0',
    '  for ((i = 2; i < CURRENT; i++)); do',
    '    w=${words[i]}',
    '    case " $_halcyon_paths " in (*" ${p:+$p/}$w "*) p=${p:+$p/}$w ;; esac',
    '  done',
    '  case ${words[CURRENT-1]} in',
    `    (${FILE_OPTIONS.join('|')}) files=1; return 0 ;;`,
    ...values,
    '  esac',
    '  case $p in',
    ...cases,
    '  esac',
    '}',
    '_halcyon() {',
    '  local -a subs opts values',
    '  local files',
    '  _halcyon_candidates',
    '  if (( files )); then _files',
    "  elif (( ${#values} )); then compadd -a values",
    "  elif [[ $PREFIX == -* ]]; then _describe -t options 'option' opts",
    "  else _describe -t commands 'command' subs",
    '  fi',
    '}',
    'if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _halcyon "$@"; else compdef _halcyon halcyon; fi',
    '',
  ].join('\n');
}

/** `halcyon completion bash|zsh`: the script on stdout (exit 2 for another shell). */
export async function completionCmd(shell: string): Promise<void> {
  const { buildProgram } = await import('./program.js');
  if (shell === 'bash') process.stdout.write(bashCompletion(buildProgram()));
  else if (shell === 'zsh') process.stdout.write(zshCompletion(buildProgram()));
  else {
    process.stderr.write(`halcyon: completion: ${shell}: expected bash or zsh\n`);
    process.exitCode = 2;
  }
}

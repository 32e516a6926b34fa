# bash completion for halcyon (and its links mailq, newaliases)
# generated from src/cli/program.ts by scripts/gen-docs (or `halcyon completion`); do not edit.
_halcyon_paths='serve config config/check config/show config/docs user user/add queue queue/check queue/salvage queue/migrate queue/list queue/show queue/flush queue/hold queue/release queue/delete queue/bounce queue/shape queue/cat mailq newaliases shaping shaping/explain destinations destinations/reset tenant tenant/list tenant/suspend tenant/resume dkim dkim/keygen events events/status verify verify/list verify/show verify/forget suppression suppression/list suppression/add suppression/remove suppression/import suppression/export completion sendmail'
_halcyon() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="" w i
  [ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"
  # The command path: the words before the cursor that extend a known one (option values are skipped).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    case " $_halcyon_paths " in *" ${path:+$path/}$w "*) path="${path:+$path/}$w" ;; esac
  done
  case "$prev" in
    -c|--config|--out) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    --by) COMPREPLY=($(compgen -W 'domain destination sender-domain' -- "$cur")); return 0 ;;
    --state) COMPREPLY=($(compgen -W 'queued inflight delivered deferred failed expired' -- "$cur")); return 0 ;;
    --algorithm) COMPREPLY=($(compgen -W 'rsa-sha256 ed25519-sha256' -- "$cur")); return 0 ;;
    --log-format) COMPREPLY=($(compgen -W 'json pretty' -- "$cur")); return 0 ;;
  esac
  local subs="" opts=""
  case "$path" in
    '') subs='serve config user queue mailq newaliases shaping destinations tenant dkim events verify suppression completion sendmail'; opts='-V --version --help' ;;
    'serve') subs=''; opts='-c --config --log-format --drain-timeout --help' ;;
    'config') subs='check show docs'; opts='--help' ;;
    'config/check') subs=''; opts='-c --config --help' ;;
    'config/show') subs=''; opts='-c --config --json --changed --file --value --help' ;;
    'config/docs') subs=''; opts='--help' ;;
    'user') subs='add'; opts='--help' ;;
    'user/add') subs=''; opts='--password --help' ;;
    'queue') subs='check salvage migrate list show flush hold release delete bounce shape cat'; opts='--help' ;;
    'queue/check') subs=''; opts='-c --config --json --help' ;;
    'queue/salvage') subs=''; opts='-c --config --json --help' ;;
    'queue/migrate') subs=''; opts='-c --config --help' ;;
    'queue/list') subs=''; opts='-c --config --direct --json --domain --state --older-than --search --help' ;;
    'queue/show') subs=''; opts='-c --config --direct --json --help' ;;
    'queue/flush') subs=''; opts='-c --config --direct --json --force --help' ;;
    'queue/hold') subs=''; opts='-c --config --direct --json --domain --help' ;;
    'queue/release') subs=''; opts='-c --config --direct --json --domain --help' ;;
    'queue/delete') subs=''; opts='-c --config --direct --json --domain --state -y --yes --help' ;;
    'queue/bounce') subs=''; opts='-c --config --direct --json --domain --state --help' ;;
    'queue/shape') subs=''; opts='-c --config --direct --json --by --help' ;;
    'queue/cat') subs=''; opts='-c --config --direct --json -e --envelope -h --headers -b --body --raw --help' ;;
    'mailq') subs=''; opts='-c --config --direct --help' ;;
    'newaliases') subs=''; opts='-c --config --help' ;;
    'shaping') subs='explain'; opts='--help' ;;
    'shaping/explain') subs=''; opts='-c --config --json --help' ;;
    'destinations') subs='reset'; opts='-c --config --direct --json --help' ;;
    'destinations/reset') subs=''; opts='-c --config --direct --json --help' ;;
    'tenant') subs='list suspend resume'; opts='--help' ;;
    'tenant/list') subs=''; opts='-c --config --direct --json --help' ;;
    'tenant/suspend') subs=''; opts='-c --config --direct --json --destination --for --help' ;;
    'tenant/resume') subs=''; opts='-c --config --direct --json --destination --help' ;;
    'dkim') subs='keygen'; opts='--help' ;;
    'dkim/keygen') subs=''; opts='--algorithm --bits --out --arc --help' ;;
    'events') subs='status'; opts='--help' ;;
    'events/status') subs=''; opts='-c --config --json --help' ;;
    'verify') subs='list show forget'; opts='--help' ;;
    'verify/list') subs=''; opts='-c --config --json --help' ;;
    'verify/show') subs=''; opts='-c --config --json --help' ;;
    'verify/forget') subs=''; opts='-c --config --json --help' ;;
    'suppression') subs='list add remove import export'; opts='--help' ;;
    'suppression/list') subs=''; opts='-c --config --direct --json --all --limit --help' ;;
    'suppression/add') subs=''; opts='-c --config --direct --json --class --reason --ttl --help' ;;
    'suppression/remove') subs=''; opts='-c --config --direct --json --help' ;;
    'suppression/import') subs=''; opts='-c --config --direct --json --help' ;;
    'suppression/export') subs=''; opts='-c --config --direct --all --help' ;;
    'completion') subs=''; opts='--help' ;;
    'sendmail') subs=''; opts='--help' ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -W "$subs" -- "$cur")); fi
  return 0
}
complete -F _halcyon halcyon

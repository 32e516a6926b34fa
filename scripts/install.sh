#!/bin/sh
# scripts/install.sh — installs a built Halcyon as a system service (docs/operations.md, "Installing").
#
# Run as root from the package it belongs to (a checkout after `npm ci && npm run build`, or the
# directory `npm i -g` put the package in). It:
#   - creates the system group and user `halcyon` (no login shell, home = the state directory),
#     unless they exist;
#   - creates /etc/halcyon (root:halcyon 0750) with a starter halcyon.toml (root:halcyon 0640) when
#     there is none, and /var/lib/halcyon (halcyon:halcyon 0750), the data_dir;
#   - installs the systemd unit (docs/halcyon.service, with this package's path and the user put in)
#     as /etc/systemd/system/halcyon.service (0644);
#   - links PREFIX/bin/halcyon to the bin, and installs the man page (PREFIX/share/man/man8/halcyon.8)
#     and the bash and zsh completions (PREFIX/share/bash-completion/completions/halcyon,
#     PREFIX/share/zsh/site-functions/_halcyon);
#   - with --mta-links, also links /usr/sbin/sendmail, /usr/bin/mailq and /usr/bin/newaliases to the
#     bin (not by default: they would replace another MTA's).
# It starts nothing: it prints the systemctl commands. Run again, it changes nothing that is already
# right, and never overwrites a config file. With --root DIR every file goes under DIR (a package
# build or a test); the user is still created on this system (unless --no-user), since a file's owner
# is a number. Options:
#   --root DIR       install under DIR (DESTDIR); default /
#   --prefix DIR     bin, man page and completions under DIR; default /usr/local
#   --user NAME      the service's user and group; default halcyon
#   --config-dir DIR default /etc/halcyon      --state-dir DIR  default /var/lib/halcyon
#   --unit-dir DIR   default /etc/systemd/system
#   --no-user        do not create the user and group (they must exist, or files stay root's)
#   --mta-links      also install sendmail, mailq and newaliases links
set -eu

app=$(cd "$(dirname "$0")/.." && pwd -P)
root=/ prefix=/usr/local user=halcyon config_dir=/etc/halcyon state_dir=/var/lib/halcyon
unit_dir=/etc/systemd/system make_user=1 mta_links=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    --config-dir) config_dir=$2; shift 2 ;;
    --state-dir) state_dir=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --no-user) make_user=0; shift ;;
    --mta-links) mta_links=1; shift ;;
    -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }
case "$user" in *[!a-z0-9_-]*|'') die "--user: a lower-case system user name, not '$user'" ;; esac
case "$state_dir" in /var/lib/?*) ;; *) die "--state-dir must be under /var/lib (it is the unit's StateDirectory=)" ;; esac
bin=$app/dist/src/cli/main.js
[ -x "$bin" ] || die "$bin is missing or not executable: run npm ci && npm run build in $app first"
dest() { printf '%s%s' "${root%/}" "$1"; }
am_root=0; [ "$(id -u)" = 0 ] && am_root=1

# The user and group: a system account that cannot log in, its home the state directory (not created here).
if [ "$make_user" = 1 ]; then
  [ "$am_root" = 1 ] || die "creating the $user user needs root (or pass --no-user)"
  getent group "$user" >/dev/null || { groupadd --system "$user"; say "group $user created"; }
  if ! getent passwd "$user" >/dev/null; then
    nologin=$(command -v nologin || echo /usr/sbin/nologin)
    useradd --system --gid "$user" --home-dir "$state_dir" --no-create-home --shell "$nologin" \
      --comment "Halcyon mail transfer agent" "$user"
    say "user $user created"
  fi
fi
owned=0; getent passwd "$user" >/dev/null && getent group "$user" >/dev/null && [ "$am_root" = 1 ] && owned=1

# dir PATH MODE OWNER GROUP: made if missing, mode and (as root) owner set every run.
dir() {
  mkdir -p "$1"; chmod "$2" "$1"
  [ "$owned" = 1 ] && chown "$3:$4" "$1"
  return 0
}
dir "$(dest "$config_dir")" 0750 root "$user"
dir "$(dest "$state_dir")" 0750 "$user" "$user"

conf=$(dest "$config_dir")/halcyon.toml
if [ -e "$conf" ]; then
  say "$conf exists: left as it is"
else
  cat > "$conf" <<EOF
# Halcyon's configuration: every setting is in \`man 8 halcyon\` and docs/configuration.md.
# Check it with \`halcyon config check\`; \`systemctl reload halcyon\` applies a change.
hostname = "$(hostname -f 2>/dev/null || hostname)"
data_dir = "$state_dir"

[smtp]
listen = ["0.0.0.0:25"]

[[domains]]
name = "localhost"
mailboxes = [{ user = "postmaster", quota = "100MiB" }]

# An /etc/aliases-style file for the local domains (docs/operations.md, "Aliases file"):
# [aliases]
# file = "$config_dir/aliases"
EOF
  say "$conf written (a starter: set hostname, domains and relay networks)"
fi
chmod 0640 "$conf"
[ "$owned" = 1 ] && chown "root:$user" "$conf"

# The unit, with this package's bin, the user and the paths put in.
unit=$(dest "$unit_dir")/halcyon.service
mkdir -p "$(dest "$unit_dir")"
sed -e "s#/opt/halcyon/dist/src/cli/main.js#$bin#" \
    -e "s#^User=halcyon\$#User=$user#" -e "s#^Group=halcyon\$#Group=$user#" \
    -e "s#^StateDirectory=halcyon\$#StateDirectory=${state_dir#/var/lib/}#" \
    -e "s#/var/lib/halcyon#$state_dir#g" -e "s#/etc/halcyon/#$config_dir/#g" \
    "$app/docs/halcyon.service" > "$unit.tmp"
chmod 0644 "$unit.tmp" && mv "$unit.tmp" "$unit"
say "unit installed: $unit"

# link TARGET NAME: a symbolic link, replaced when it points elsewhere.
link() {
  mkdir -p "$(dirname "$2")"
  [ "$(readlink "$2" 2>/dev/null || true)" = "$1" ] || ln -sfn "$1" "$2"
}
link "$bin" "$(dest "$prefix")/bin/halcyon"
inst() { mkdir -p "$(dirname "$2")"; cp "$1" "$2.tmp" && chmod 0644 "$2.tmp" && mv "$2.tmp" "$2"; }
inst "$app/man/halcyon.8" "$(dest "$prefix")/share/man/man8/halcyon.8"
inst "$app/completions/halcyon.bash" "$(dest "$prefix")/share/bash-completion/completions/halcyon"
inst "$app/completions/_halcyon" "$(dest "$prefix")/share/zsh/site-functions/_halcyon"
if [ "$mta_links" = 1 ]; then
  link "$bin" "$(dest /usr/sbin/sendmail)"; link "$bin" "$(dest /usr/bin/mailq)"; link "$bin" "$(dest /usr/bin/newaliases)"
  say "sendmail, mailq and newaliases now run Halcyon"
fi

if [ "$root" = / ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
say "done. Next: edit $config_dir/halcyon.toml, then: halcyon config check $config_dir/halcyon.toml && systemctl enable --now halcyon"

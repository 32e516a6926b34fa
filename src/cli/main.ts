#!/bin/sh
// 2>/dev/null; self=$(readlink -f -- "$0") && dir=${self%/dist/src/cli/main.js} || exit 1
// 2>/dev/null; while [ -n "$dir" ]; do [ -x "$dir/node_modules/.bin/node" ] && exec "$dir/node_modules/.bin/node" "$0" "$@"; dir=${dir%/*}; done
// 2>/dev/null; node -e 'process.exit(+process.versions.node.split(".")[0] < 24)' 2>/dev/null && exec node "$0" "$@"
// 2>/dev/null; echo "halcyon: needs Node 24 or later: run npm ci in ${self%/dist/src/cli/main.js} (it installs Node 24 into node_modules)" >&2; exit 1
/**
 * cli/main — the `halcyon` command: hands `sendmail` (by link name or as the
 * first argument) to cli/sendmail, everything else to the commander tree of
 * cli/program, whose actions import their module only when they run (a read
 * command loads no server module; `--version` loads commander alone). No
 * logic of its own beyond wiring and exit codes.
 *
 * The four lines above are a shell launcher, comments to JavaScript. Run as
 * a program (the npm bin, or a link to it such as `sendmail`), /bin/sh finds
 * the Node that `npm ci` installed beside this file (node_modules/.bin/node,
 * Node 24; docs/decisions/0008-node-24-and-node-sqlite.md) and execs it on
 * this file, so the command never runs on an older `node` first on PATH.
 * Only where the package has no Node of its own (no node-<os>-<cpu> package
 * for the platform) does it take PATH's node, and only at 24 or later. The
 * link's name stays in argv[1] for the `sendmail`, `mailq` and `newaliases` checks below. The process
 * title is `halcyon`, so `pidof halcyon` finds the server.
 */
import { basename } from 'node:path';

process.title = 'halcyon';

const invokedAs = basename(process.argv[1] ?? '');
// Run through a link named mailq or newaliases: that command, with the link's arguments.
if (invokedAs === 'mailq' || invokedAs === 'newaliases') process.argv.splice(2, 0, invokedAs);
const sendmailArgs = invokedAs === 'sendmail' ? process.argv.slice(2) : process.argv[2] === 'sendmail' ? process.argv.slice(3) : undefined;

if (sendmailArgs) {
  const { sendmailMain } = await import('./sendmail.js');
  sendmailMain(sendmailArgs).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`sendmail: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 75; // EX_TEMPFAIL: the caller (cron, PHP) may try again
  });
} else {
  // cli/program defines every command; each loads its own module only when it runs.
  const { buildProgram } = await import('./program.js');
  buildProgram().parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`halcyon: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

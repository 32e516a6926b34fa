/**
 * test/support/module-log — loaded with `node --import` (NODE_OPTIONS) into a
 * CLI run, it writes the URL of every module the run loaded, one per line,
 * to the file $HALCYON_MODULE_LOG when the process exits. Tests read it to
 * see which parts of Halcyon a command pulled in. Changes nothing else.
 */
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';

const out = process.env.HALCYON_MODULE_LOG;
const loaded: string[] = [];
if (out) {
  registerHooks({
    load(url, context, nextLoad) {
      loaded.push(url);
      return nextLoad(url, context);
    },
  });
  process.on('exit', () => writeFileSync(out, `${loaded.join('\n')}\n`));
}

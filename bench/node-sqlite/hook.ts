/**
 * bench/node-sqlite/hook — loaded with `node --import`, it resolves the
 * module `better-sqlite3` to bench/node-sqlite/shim (node:sqlite), in the
 * main thread and, through the inherited --import, in the queue's worker
 * thread. So `node --import dist/bench/node-sqlite/hook.js dist/bench/X.js`
 * runs bench X with Halcyon's unchanged SQLite queue on node:sqlite.
 * Changes nothing else.
 */
import { registerHooks } from 'node:module';

const shim = new URL('./shim.js', import.meta.url).href;
registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === 'better-sqlite3') return { url: shim, format: 'module', shortCircuit: true };
    return nextResolve(specifier, context);
  },
});

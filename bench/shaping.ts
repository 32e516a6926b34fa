/**
 * bench/shaping — the figures of issue 25's provider storms, with and without
 * the shipped provider presets: `node dist/bench/shaping.js` (after `npm run
 * build`). Each scene runs over real sockets on a simulated clock
 * (test/scheduler/provider-scenes): a minute of the scene is seconds of wall
 * time. Prints one line per scene and setting, as the closing note quotes.
 */
import { gmailScene, yahooScene } from '../test/scheduler/provider-scenes.js';

const s = (ms: number | undefined): string => (ms === undefined ? 'not within the horizon' : `${Math.round(ms / 1000)} s`);

for (const presets of [true, false]) {
  const g = await gmailScene({ presets });
  process.stdout.write(`gmail-style  presets=${presets ? 'on ' : 'off'}: first 60 s: ${g.delivered60} delivered (remote allows ${g.allowed60}), `
    + `${g.replies421In60} × 421-4.7.28, ${g.connections60} connections; all 200: delivered ${g.delivered}, failed ${g.failed}, `
    + `duplicates ${g.duplicates}, 421s ${g.replies421}, last delivery at ${s(g.drainedMs)}\n`);
}
for (const presets of [true, false]) {
  const g = await gmailScene({ presets, twoMxSets: true });
  process.stdout.write(`gmail-style, two Google MX sets  presets=${presets ? 'on ' : 'off'}: first 60 s: ${g.delivered60} delivered, ${g.replies421In60} × 421-4.7.28; `
    + `all 200: delivered ${g.delivered}, duplicates ${g.duplicates}, 421s ${g.replies421}, last delivery at ${s(g.drainedMs)}\n`);
}
for (const presets of [true, false]) {
  const y = await yahooScene({ presets });
  process.stdout.write(`yahoo TSS04  presets=${presets ? 'on ' : 'off'}: first 60 s: ${y.connections60} connections; after the remote recovers at 60 s: `
    + `delivered ${y.delivered}/${y.total}, failed ${y.failed}, last delivery ${s(y.resumedAfterMs)} after the recovery\n`);
}

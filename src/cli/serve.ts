/**
 * cli/serve — `halcyon serve`: loads the config, starts the app, prints where
 * it listens, and turns signals into lifecycle steps:
 *
 * - SIGTERM, SIGINT: graceful stop — new SMTP connections get 421 4.3.2,
 *   transactions in progress finish (up to --drain-timeout), deliveries in
 *   flight finish, the queue is closed, exit 0.
 * A queue that is damaged or lost its file stops the start (exit 3) with a
 * message naming the file and the `queue check` / `queue salvage` commands.
 * - SIGHUP: re-read the config file; a valid one is applied (see app.ts for
 *   what a reload changes), an invalid one is refused with its errors logged
 *   and the running configuration stays.
 */
import { startApp, type App } from '../app.js';
import { ConfigError, configFileFrom, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import { configProblems } from '../app.js';
import { QueueUnfitError } from '../queue/sqlite/check.js';

function withFormat(cfg: Config, format: 'json' | 'pretty' | undefined): Config {
  return format ? { ...cfg, log_format: format } : cfg;
}

/** SIGHUP: load, validate, apply; errors are logged and change nothing. */
export async function reloadFromFile(app: App, file: string | undefined, format: 'json' | 'pretty' | undefined): Promise<boolean> {
  if (file === undefined) {
    app.log.warn({ event: 'reload_skipped' }, 'SIGHUP: no config file (embedded defaults): nothing to reload');
    return false;
  }
  try {
    const { restartNeeded } = await app.reload(withFormat(loadConfig(file), format));
    // A signal does not say who sent it: `who` is the signal (the admin line of a config reload).
    app.log.info({ event: 'reloaded', action: 'config reload', who: 'SIGHUP', file, restart_needed: restartNeeded.length ? restartNeeded : undefined },
      restartNeeded.length ? `configuration reloaded; these changes need a restart: ${restartNeeded.join(', ')}` : 'configuration reloaded');
    return true;
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      app.log.error({ event: 'reload_failed', action: 'config reload', who: 'SIGHUP', file, err: (err as Error).message }, 'configuration reload failed; the running configuration stays');
      return false;
    }
    app.log.error({ event: 'reload_refused', action: 'config reload', who: 'SIGHUP', file, problems: err.problems.map((p) => `${p.path}: ${p.message}`) },
      'configuration has errors; the running configuration stays');
    return false;
  }
}

/** `halcyon serve` (options as cli/program defines them). */
export async function serve(opts: { config?: string; logFormat?: 'json' | 'pretty'; drainTimeout: string }): Promise<void> {
  const file = configFileFrom(opts.config);
  const drainMs = parseDuration(opts.drainTimeout);
  if (drainMs === undefined) {
    process.stderr.write(`halcyon: --drain-timeout: not a duration: ${opts.drainTimeout}\n`);
    process.exit(2);
  }
  let cfg: Config;
  try {
    cfg = withFormat(loadConfig(file), opts.logFormat);
    const problems = configProblems(cfg);
    if (problems.length > 0) throw new ConfigError(file, problems);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${err.file ?? 'config'}: ${p.path}: ${p.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let app: App;
  try {
    app = await startApp(cfg);
  } catch (err) {
    if (!(err instanceof QueueUnfitError)) throw err;
    process.stderr.write(`halcyon: ${err.message}\n`);
    process.exit(3);
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ event: 'shutdown', signal: sig, drain_ms: drainMs }, 'shutting down');
    // Logs are written asynchronously: flush them before exiting, or the last lines are lost.
    const exit = (code: number) => app.log.flush(() => process.exit(code));
    void app.stop(drainMs).then(() => {
      app.log.info({ event: 'stopped' }, 'stopped');
      exit(0);
    }, (err: unknown) => {
      app.log.error({ event: 'stop_failed', err: (err as Error).message }, 'stop failed');
      exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    if (stopping) return;
    app.log.info({ event: 'reload', signal: 'SIGHUP' }, 'reloading configuration');
    // One reload at a time, in signal order.
    reloading = reloading.then(() => reloadFromFile(app, file, opts.logFormat)).then(() => undefined);
  });
  // Announced only once the handlers are in place: a SIGHUP sent on seeing "serving" must not meet the default action (exit).
  const where = app.listening.map((l) => `${l.kind} on ${l.address}`).join(', ');
  process.stderr.write(`halcyon: serving ${where}; data in ${cfg.data_dir}${file ? `; config ${file}` : ' (embedded defaults)'}\n`);
}

/**
 * cli/serve — `halcyon serve`: loads the config, starts the app, prints where
 * it listens, and turns signals into a graceful stop (SIGTERM, SIGINT).
 */
import type { Command } from 'commander';
import { startApp } from '../app.js';
import { ConfigError, configFileFrom, loadConfig } from '../config/load.js';

export function registerServe(program: Command): void {
  program.command('serve')
    .description('Start Halcyon (embedded defaults when no config file is given)')
    .option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .option('--log-format <format>', 'json or pretty')
    .action(async (opts: { config?: string; logFormat?: 'json' | 'pretty' }) => {
      const file = configFileFrom(opts.config);
      let cfg;
      try {
        cfg = loadConfig(file);
      } catch (err) {
        if (err instanceof ConfigError) {
          for (const p of err.problems) process.stderr.write(`${err.file ?? 'config'}: ${p.path}: ${p.message}\n`);
          process.exit(2);
        }
        throw err;
      }
      if (opts.logFormat) cfg = { ...cfg, log_format: opts.logFormat };
      const app = await startApp(cfg);
      const where = app.listening.map((l) => `${l.kind} on ${l.address}`).join(', ');
      process.stderr.write(`halcyon: serving ${where}; data in ${cfg.data_dir}${file ? `; config ${file}` : ' (embedded defaults)'}\n`);
      let stopping = false;
      const stop = (sig: string) => {
        if (stopping) return;
        stopping = true;
        app.log.info({ event: 'shutdown', signal: sig }, 'shutting down');
        void app.stop(30_000).then(() => process.exit(0));
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}

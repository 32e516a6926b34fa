/**
 * cli/config-cmd — `halcyon config check|show|docs`.
 */
import type { Command } from 'commander';
import { stringify } from 'smol-toml';
import { configDocs } from '../config/docs.js';
import { ConfigError, configFileFrom, loadConfig } from '../config/load.js';
import { httpConfigProblems } from '../http/server.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('Check and show the configuration');
  config.command('check [file]')
    .description('Validate a config file; prints every error with its key path')
    .action((file?: string) => {
      const f = configFileFrom(file);
      try {
        const cfg = loadConfig(f);
        const problems = httpConfigProblems(cfg);
        if (problems.length > 0) throw new ConfigError(f, problems);
        process.stdout.write(`${f ?? 'embedded defaults'}: ok\n`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        for (const p of err.problems) process.stdout.write(`${err.file ?? 'config'}: ${p.path}: ${p.message}\n`);
        process.exitCode = 2;
      }
    });
  config.command('show')
    .description('Print the effective configuration, defaults included (TOML)')
    .option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .option('--json', 'print JSON')
    .action((opts: { config?: string; json?: boolean }) => {
      const cfg = loadConfig(configFileFrom(opts.config));
      const shown = { ...cfg, users: cfg.users.map((u) => ({ ...u, password_hash: '(hidden)' })) };
      process.stdout.write(opts.json ? `${JSON.stringify(shown, null, 2)}\n` : `${stringify(shown)}\n`);
    });
  config.command('docs')
    .description('Print the configuration reference (docs/configuration.md) generated from the schema')
    .action(() => {
      process.stdout.write(configDocs());
    });
}

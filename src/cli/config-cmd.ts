/**
 * cli/config-cmd — `halcyon config check|show|docs`.
 *
 * `check` is the truth: it rejects everything `serve` would refuse to start
 * with (schema, admin token rule, TLS files), each problem on its own line
 * with its key path. `show` prints the configuration in force on the running
 * server when one answers on http.listen (after a SIGHUP that is what the
 * server uses, not what the file says), else the file's; `--changed` keeps
 * only what differs from the defaults (postconf -n). Neither writes a file.
 */
import type { Command } from 'commander';
import { stringify } from 'smol-toml';
import { configProblems } from '../app.js';
import { configDocs } from '../config/docs.js';
import { ConfigError, configFileFrom, loadConfig, parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { redactConfig } from '../http/admin.js';
import { runningServer } from './backend.js';

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The parts of `value` that differ from `base` (tables compared key by key, anything else as a whole). */
export function changedFrom(value: Tree, base: Tree): Tree {
  const out: Tree = {};
  for (const [k, v] of Object.entries(value)) {
    const b = base[k];
    if (isTree(v) && isTree(b)) {
      const sub = changedFrom(v, b);
      if (Object.keys(sub).length > 0) out[k] = sub;
    } else if (JSON.stringify(v) !== JSON.stringify(b)) out[k] = v;
  }
  return out;
}

function printProblems(err: ConfigError): void {
  for (const p of err.problems) process.stdout.write(`${err.file ?? 'config'}: ${p.path}: ${p.message}\n`);
}

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('Check and show the configuration');
  config.command('check [file]')
    .description('Validate a config file as `serve` would; prints every error with its key path')
    .option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .action((file: string | undefined, opts: { config?: string }) => {
      const f = configFileFrom(file ?? opts.config);
      try {
        const cfg = loadConfig(f);
        const problems = configProblems(cfg);
        if (problems.length > 0) throw new ConfigError(f, problems);
        process.stdout.write(`${f ?? 'embedded defaults'}: ok\n`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        printProblems(err);
        process.exitCode = 2;
      }
    });
  config.command('show')
    .description('Print the configuration in force (the running server\'s, else the file\'s), defaults included (TOML)')
    .option('-c, --config <file>', 'config file (or HALCYON_CONFIG)')
    .option('--json', 'print JSON')
    .option('--changed', 'only settings that differ from the defaults (like postconf -n)')
    .option('--file', 'show the file\'s configuration even when a server is running')
    .action(async (opts: { config?: string; json?: boolean; changed?: boolean; file?: boolean }) => {
      const f = configFileFrom(opts.config);
      let cfg: Config;
      try {
        cfg = loadConfig(f);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        printProblems(err);
        process.exitCode = 2;
        return;
      }
      const server = opts.file ? undefined : await runningServer(cfg);
      const shown = server ? await server.config() : redactConfig(cfg);
      process.stderr.write(server ? `# in force on the running server (${cfg.http.listen})\n` : `# from ${f ?? 'embedded defaults'} (no server answering)\n`);
      const out = opts.changed ? changedFrom(shown as Tree, parseConfig({}) as Tree) : shown;
      process.stdout.write(opts.json ? `${JSON.stringify(out, null, 2)}\n` : `${stringify(out)}\n`);
    });
  config.command('docs')
    .description('Print the configuration reference (docs/configuration.md) generated from the schema')
    .action(() => {
      process.stdout.write(configDocs());
    });
}

/**
 * cli/config-cmd — `halcyon config check|show|docs`.
 *
 * `check` is the truth: it rejects everything `serve` would refuse to start
 * with (schema, admin token rule, TLS files), each problem on its own line
 * with its key path. `show` prints the configuration in force on the running
 * server when one answers on http.listen (after a SIGHUP that is what the
 * server uses, not what the file says), else the file's; `--changed` keeps
 * only what differs from the defaults (postconf -n); `show KEY…` prints just
 * those settings, one `key = value` line each (a table as its TOML section),
 * like `postconf KEY`, and `--value` only the value (postconf -h). An unknown
 * key is an error (exit 1). Neither writes a file.
 */
import { stringify } from 'smol-toml';
import { ConfigError, configFileFrom } from '../config/file.js';
import { redactConfig } from '../http/admin.js';
import { runningServerOf } from './admin-client.js';

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

/** The value at a dotted key path ("smtp.max_message_size"), or undefined when there is none. */
export function settingAt(tree: Tree, key: string): unknown {
  let v: unknown = tree;
  for (const part of key.split('.')) {
    if (!isTree(v) || !Object.hasOwn(v, part)) return undefined;
    v = v[part];
  }
  return v;
}

/** One setting as postconf prints it: `key = value` in TOML (dotted key), or its section for a table. */
export function formatSetting(key: string, value: unknown, valueOnly: boolean): string {
  if (isTree(value)) {
    // A table: TOML with the full path as its header, so the lines can be pasted back into the file.
    const nested = key.split('.').reduceRight<Tree>((inner, part) => ({ [part]: inner }), value);
    return `${stringify(nested)}\n`;
  }
  const line = stringify({ v: value }).trim().replace(/^v = /, '');
  return valueOnly ? `${line.startsWith('"') ? JSON.parse(line) as string : line}\n` : `${key} = ${line}\n`;
}

/** `halcyon config check [FILE]`: what serve would refuse to start with (loads the app's checks). */
export async function configCheck(file: string | undefined, opts: { config?: string }): Promise<void> {
  const f = configFileFrom(file ?? opts.config);
  try {
    const cfg = (await import('../config/load.js')).loadConfig(f);
    // The same checks serve runs before it starts (TLS files, the admin token rule): they live with the app.
    const { configProblems } = await import('../app.js');
    const problems = configProblems(cfg);
    if (problems.length > 0) throw new ConfigError(f, problems);
    // Refused alias entries do not stop a server (its other aliases work): warnings, not problems.
    if (cfg.aliases.file !== undefined) {
      const { AliasSource } = await import('../local/alias-source.js');
      for (const p of new AliasSource(cfg.aliases.file).load('check').problems) process.stdout.write(`${f ?? 'config'}: warning: aliases: ${p}\n`);
    }
    process.stdout.write(`${f ?? 'embedded defaults'}: ok\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    printProblems(err);
    process.exitCode = 2;
  }
}

/** `halcyon config show [KEY…]`: the running server's (found from the file's [http] alone), else the file's. */
export async function configShow(keys: readonly string[], opts: { config?: string; json?: boolean; changed?: boolean; file?: boolean; value?: boolean }): Promise<void> {
  const f = configFileFrom(opts.config);
  let shown: Tree;
  let server: Awaited<ReturnType<typeof runningServerOf>>;
  try {
    server = opts.file ? undefined : await runningServerOf(f);
    // Validated only when it is the file's configuration that is shown (or the defaults, for --changed).
    shown = server ? await server.config() as unknown as Tree : redactConfig((await import('../config/load.js')).loadConfig(f)) as unknown as Tree;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    printProblems(err);
    process.exitCode = 2;
    return;
  }
  const out = opts.changed ? changedFrom(shown, (await import('../config/load.js')).parseConfig({}) as unknown as Tree) : shown;
  if (keys.length === 0) {
    process.stderr.write(server ? `# in force on the running server (${server.base})\n` : `# from ${f ?? 'embedded defaults'} (no server answering)\n`);
    process.stdout.write(opts.json ? `${JSON.stringify(out, null, 2)}\n` : `${stringify(out)}\n`);
    return;
  }
  const json: Tree = {};
  for (const key of keys) {
    const value = settingAt(out, key);
    if (value === undefined) {
      // postconf warns "unknown parameter"; a setting --changed left out is the default, not unknown.
      const known = settingAt(shown, key) !== undefined;
      if (!known) {
        process.stderr.write(`halcyon: ${key}: no such setting (see halcyon config docs)\n`);
        process.exitCode = 1;
      }
      continue;
    }
    if (opts.json) json[key] = value;
    else process.stdout.write(formatSetting(key, value, Boolean(opts.value)));
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
}

/** `halcyon config docs`. */
export async function configDocsCmd(): Promise<void> {
  const { configDocs } = await import('../config/docs.js');
  process.stdout.write(configDocs());
}

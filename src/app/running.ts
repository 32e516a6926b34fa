/**
 * app/running — what a configuration becomes at start and at each reload:
 * the snapshot every service reads at use time (`Running`), the settings
 * derived from it (SMTP session, recipient verification), which settings a
 * reload cannot change (RESTART_ONLY), and the problems a valid-looking
 * configuration can still fail on (`configProblems`).
 *
 * Builds nothing that listens or delivers: app.ts wires those.
 */
import type { Config } from '../config/schema.js';
import { durationMs, sizeBytes } from '../config/units.js';
import { ConfigError, type ConfigProblem } from '../config/load.js';
import { loadBounceClassifier } from '../config/bounce-rules-file.js';
import { providersFor } from '../config/providers-file.js';
import { valueAt, withValueAt } from '../config/live.js';
import { UserDirectory } from '../inbound/auth.js';
import { createDirectory } from '../inbound/directory.js';
import { networkMatcher } from '../inbound/policy.js';
import type { SessionSettings } from '../inbound/session-deps.js';
import { tlsFileProblems } from '../inbound/tls-cert.js';
import type { VerifySettings } from '../inbound/verify-policy.js';
import { loadDkimKeys } from '../intake/dkim-keys.js';
import type { DkimKey } from '../intake/dkim.js';
import { Mailboxes } from '../local/maildir.js';
import { aliasFileProblems, aliasSourceFor, type AliasLog, type AliasSource } from '../local/alias-source.js';
import { httpConfigProblems } from '../http/server.js';
import type { BounceClassifier } from '../smtp/bounce-rules.js';

/** Settings captured when a service is built: a reload cannot change them (key paths into Config). */
export const RESTART_ONLY: readonly string[] = [
  'data_dir', 'smtp.listen', 'submission.listen', 'submission.tls_listen', 'tls', 'dns', 'http.listen', 'http.enabled', 'log_format',
  'delivery.retry_initial', 'delivery.retry_max', 'delivery.destination_backoff', 'delivery.destination_backoff_max',
  'delivery.destination_rate', 'delivery.timeouts', 'delivery.connection_idle_timeout',
  'delivery.max_queue_lifetime', 'delivery.delay_warning_after', 'delivery.tls_ca_file', 'delivery.mta_sts', 'hostname', 'node_id', 'queue', 'postmaster',
  'events', 'delivery.dane', 'tls_rpt.interval', 'server.workers',
];

/** `next` with every restart-only setting at its running value: what a reload puts in force. */
export function inForce(next: Config, running: Config): Config {
  return RESTART_ONLY.reduce((c, path) => withValueAt(c, path, valueAt(running, path)), next);
}

/** The restart-only settings whose value differs between `next` and `running`. */
export function restartNeeded(next: Config, running: Config): string[] {
  return RESTART_ONLY.filter((k) => JSON.stringify(valueAt(next, k)) !== JSON.stringify(valueAt(running, k)));
}

/**
 * Everything a valid-looking configuration could still fail on at start:
 * the admin listener's token rule, TLS files that cannot be read or do not
 * make a key pair, DKIM keys that cannot be loaded, an aliases file that
 * cannot be read, a provider of the operator's own without `mx`. `config check`, `serve`
 * and a reload all ask this.
 */
export function configProblems(cfg: Config): ConfigProblem[] {
  const problems = [...httpConfigProblems(cfg), ...tlsFileProblems(cfg.tls), ...aliasFileProblems(cfg.aliases.file)];
  for (const load of [() => loadDkimKeys(cfg.dkim), () => loadDkimKeys(cfg.arc, 'arc'), () => loadBounceClassifier(cfg.bounces.rules), () => providersFor(cfg.shaping)]) {
    try {
      load();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  return problems;
}

/** What the services read at use time: the configuration in force and what is built from it. */
export interface Running {
  readonly config: Config;
  readonly mailboxes: Mailboxes;
  /** The aliases file's table ([aliases] file), kept across reloads while its path stays; re-read on change. */
  readonly aliases: AliasSource | undefined;
  readonly users: UserDirectory;
  readonly directory: ReturnType<typeof createDirectory>;
  readonly mayRelayFrom: (ip: string) => boolean;
  readonly dkimKeys: DkimKey[];
  readonly arcKeys: DkimKey[];
  readonly settings: { smtp: SessionSettings; submission: SessionSettings; greetingDelayMs: number };
  /** The bounce classifier: bounces.rules first, then the shipped rules (config/bounce-rules-file). */
  readonly classifier: BounceClassifier;
}

/** `prev`: the snapshot in force, at a reload (its aliases file is kept, and read again, when the path stays). */
export async function buildRunning(cfg: Config, dataDir: string, log: AliasLog, prev?: Running): Promise<Running> {
  const aliases = aliasSourceFor(cfg.aliases.file, log, prev?.aliases, prev ? 'reload' : 'start');
  const mailboxes = new Mailboxes(cfg.domains, dataDir, { hostname: cfg.hostname }, aliases);
  await mailboxes.refreshUsage();
  return {
    config: cfg,
    mailboxes,
    aliases,
    users: new UserDirectory(cfg.users),
    directory: createDirectory(cfg, mailboxes),
    mayRelayFrom: networkMatcher(cfg.relay.networks),
    dkimKeys: loadDkimKeys(cfg.dkim),
    arcKeys: loadDkimKeys(cfg.arc, 'arc'),
    settings: { smtp: sessionSettings(cfg, 'smtp'), submission: sessionSettings(cfg, 'submission'), greetingDelayMs: durationMs(cfg.smtp.greeting_delay) },
    classifier: loadBounceClassifier(cfg.bounces.rules),
  };
}

export function sessionSettings(cfg: Config, kind: 'smtp' | 'submission'): SessionSettings {
  return {
    verify: kind === 'smtp' && cfg.inbound.verify,
    dmarc: cfg.inbound.dmarc,
    hostname: cfg.hostname,
    kind,
    maxMessageSize: sizeBytes(cfg.smtp.max_message_size),
    maxRecipients: cfg.smtp.max_recipients,
    maxErrors: cfg.smtp.max_errors,
    bareNewline: cfg.smtp.bare_newline,
    commandTimeoutMs: durationMs(cfg.smtp.command_timeout),
    dataTimeoutMs: durationMs(cfg.smtp.data_timeout),
    maxReceivedHeaders: cfg.smtp.max_received_headers,
  };
}

/** [recipient_verification] in milliseconds. */
export function verifySettings(cfg: Config): VerifySettings {
  const v = cfg.recipient_verification;
  return {
    waitMs: durationMs(v.wait), unreachable: v.unreachable,
    positiveRefreshMs: durationMs(v.positive_refresh), positiveExpireMs: durationMs(v.positive_expire),
    negativeRefreshMs: durationMs(v.negative_refresh), negativeExpireMs: durationMs(v.negative_expire),
  };
}

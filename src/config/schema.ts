/**
 * config/schema — every Halcyon setting, its default and its meaning, in one
 * place. The docs (`docs/configuration.md`) are generated from this file by
 * `halcyon config docs`, and a test checks they are current.
 *
 * Unknown keys are errors (strict objects), so a typo never silently falls
 * back to a default. Durations and sizes stay strings here ("5m", "35MiB") so
 * `config show` prints what a person would write; code converts them with
 * config/units at the point of use.
 */
import { hostname as osHostname } from 'node:os';
import { z } from 'zod';
import { HTTP_DEFAULTS } from './http-listen.js';
import { isIP } from 'node:net';
import { HOST_PORT, parseCidr, parseDailyCap, parseDuration, parseRate, parseResolverAddress, parseSize } from './units.js';

const duration = (def: string, what: string) =>
  z.string().refine((s) => parseDuration(s) !== undefined, { message: 'expected a duration like "500ms", "15m", "4h", "5d"' })
    .default(def).describe(what);

const size = (def: string, what: string) =>
  z.union([z.string(), z.number().int().nonnegative()])
    .refine((s) => parseSize(s) !== undefined, { message: 'expected a size like "35MiB", "100MB", "512k" or a byte count' })
    .default(def).describe(what);

const portOf = (s: string): number => Number(HOST_PORT.exec(s)?.[2] ?? -1);
/** A next hop: port 1–65535 (a route with port 0 or 99999 would fail at the first delivery, not here). */
const hostPort = z.string().regex(HOST_PORT, 'expected "host:port" (IPv6 as "[::1]:port")')
  .refine((s) => !HOST_PORT.test(s) || (portOf(s) >= 1 && portOf(s) <= 65535), { message: 'port must be 1–65535' });
/** A listener: port 0–65535, where 0 binds any free port (tests; the bound port is logged). */
const listenAddress = z.string().regex(HOST_PORT, 'expected "host:port" (IPv6 as "[::1]:port")')
  .refine((s) => !HOST_PORT.test(s) || portOf(s) <= 65535, { message: 'port must be 0–65535 (0: any free port)' });
/** A file or directory name taken from config: nothing that could climb out of data_dir. */
const safeSegment = (s: string): boolean => !(s === '.' || s === '..' || /[/\\\0]/.test(s));
const UNSAFE_SEGMENT = 'may not be "." or ".." nor contain "/", "\\" or NUL (it names a directory under data_dir)';

/** What goes after EHLO and in Received: a domain name (or an address literal), nothing that could break a line. */
const HOSTNAME = /^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\]|\[IPv6:[0-9A-Fa-f:.]+\])$/;
const DNS_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;
const HOSTNAME_MESSAGE = 'expected a host name ("mx.example.com") or an address literal ("[192.0.2.1]")';

const tlsPolicy = z.enum(['none', 'opportunistic', 'required', 'verify']);

/** What a reply rule does and when (shared by `[[delivery.rules]]` and a provider's rules; see destination/reply-rules). */
const replyRuleFields = {
  match: z.string().refine((s) => { try { new RegExp(s, 'i'); return true; } catch { return false; } }, { message: 'expected a regular expression' })
    .describe('Regular expression (JavaScript syntax, case-insensitive) tested against the reply text (enhanced code included).'),
  code: z.number().int().min(200).max(599).optional().describe('Only replies with this code (e.g. 421); unset → any code.'),
  action: z.enum(['suspend', 'set', 'bounce', 'slow_down', 'suspend_tenant'])
    .describe('suspend: no connection to the destination for `for`; set: max_connections / rate for `for`; bounce: fail the recipient at once (no retry); slow_down: cut the adaptive message rate by `factor` and pause for `for` (the recipients wait for the rate, not for a backoff); suspend_tenant: the tenant whose mail drew the reply sends nothing more to the destination (a provider\'s rule: to the whole provider) for `for`, while other tenants go on (docs/shaping.md).'),
  for: duration('1h', 'How long a suspend, set or suspend_tenant lasts after the last matching reply; with slow_down, the pause after the cut ("0s": none).'),
  max_connections: z.number().int().min(1).optional().describe('With action "set": the destination\'s connection cap while the rule is active.'),
  rate: z.string().refine((s) => parseRate(s) !== undefined, { message: 'expected a rate like "100/min"' }).optional()
    .describe('With action "set": the destination\'s message rate while the rule is active ("20/min").'),
  factor: z.number().gt(0).lt(1).default(0.5).describe('With action "slow_down": the adaptive rate is multiplied by this (0.5 halves it).'),
};
const setNeedsLimit = { message: 'action "set" needs max_connections or rate' };
const setHasLimit = (r: { action: string; max_connections?: number | undefined; rate?: string | undefined }): boolean =>
  r.action !== 'set' || r.max_connections !== undefined || r.rate !== undefined;

/** One `[[delivery.rules]]` entry: what to do when a destination's reply text matches (see destination/reply-rules). */
const replyRule = z.strictObject({
  ...replyRuleFields,
  destination: z.string().default('*').describe('Glob (`*`, `?`) on the destination key, e.g. "mx:*.google.com*" or "route:*".'),
}).refine(setHasLimit, setNeedsLimit);

/** One rule of a provider (data/providers.toml or `[shaping.providers.NAME] rules`): it acts on the whole provider. */
export const providerRule = z.strictObject({
  ...replyRuleFields,
  source: z.string().min(1).optional().describe('Where the provider documents the reply (a URL, for readers and `halcyon shaping explain`).'),
}).refine(setHasLimit, setNeedsLimit);

const rateText = z.string().refine((s) => parseRate(s) !== undefined, { message: 'expected a rate like "100/min"' });

/** The most a tenant's weight can be (`[tenants.NAME] weight`; it becomes SQL text in queue/fair-claim). */
export const MAX_TENANT_WEIGHT = 1000;

/** `[tenants.NAME]`: one tenant's limits (destination/tenants, docs/shaping.md "Tenant limits"). */
const tenantLimits = z.strictObject({
  rate: rateText.optional()
    .describe('The most messages the tenant sends per unit of time ("100/min"), counted per delivery transaction (one message to one destination), over every destination and every node: one token bucket on the queue. Over it the tenant\'s recipients wait (no attempt counted, no bounce) while other tenants\' mail goes on. Unset → no limit.'),
  weight: z.number().int().min(1).max(MAX_TENANT_WEIGHT).default(1)
    .describe('The tenant\'s share of the fair claim at a destination where several tenants have mail due: a tenant of weight 3 gets three messages for each one of a weight-1 tenant.'),
});

/** What a provider preset sets (data/providers.toml), each field optional in an operator's override. */
export const providerSettings = {
  mx: z.array(z.string().regex(/^\*\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/, 'expected an MX host suffix like "*.google.com"')).min(1).optional()
    .describe('MX host suffixes ("*.google.com"): a destination is the provider\'s when every host of its MX set ends in one of them. Required for a provider that is not shipped.'),
  max_connections: z.number().int().min(1).optional().describe('Connections per destination of the provider (only ever lowers delivery.max_connections_per_destination).'),
  max_messages_per_connection: z.number().int().min(1).optional().describe('Transactions on one connection (only ever lowers delivery.max_messages_per_connection).'),
  rate: rateText.optional().describe('Messages per unit of time to the whole provider, paced one at a time ("300/min"): the ceiling the adaptive rate grows back to.'),
  tls: tlsPolicy.optional().describe('At least this TLS policy towards the provider (never lowers delivery.tls, a route\'s, MTA-STS or DANE).'),
  rules: z.array(providerRule).optional().describe('The provider\'s reply rules (as [[delivery.rules]], without destination; with source): they replace the shipped ones.'),
};

const routeTable = z.strictObject({
  hosts: z.array(hostPort).min(1).optional().describe('Next hops ("host:port"), tried in order. Either hosts or socket.'),
  socket: z.string().startsWith('/', 'expected an absolute path').optional()
    .describe('LMTP only: the Unix socket path of the LMTP server (e.g. Dovecot\'s /var/run/dovecot/lmtp), instead of hosts.'),
  protocol: z.enum(['smtp', 'lmtp']).optional()
    .describe('"smtp" (the default: EHLO, one reply at end of data) or "lmtp" (RFC 2033: LHLO, one end-of-data reply per recipient), e.g. to hand mail to Dovecot.'),
  tls: tlsPolicy.optional().describe('TLS policy towards this route (default: delivery.tls).'),
  auth: z.strictObject({
    user: z.string().min(1),
    password: z.string(),
  }).optional().describe('AUTH PLAIN/LOGIN credentials for a smarthost.'),
  pool: z.string().optional()
    .describe('The [[egress.pools]] entry whose sources this route\'s connections leave from (before [egress] tenant_pools and default_pool). Not for socket routes.'),
  verify: z.enum(['probe', 'off']).optional()
    .describe('Recipient verification (Postfix\'s reject_unverified_recipient): "probe" checks an address not yet known with a probe transaction on this route (MAIL FROM:<>, RCPT TO, QUIT; never DATA) and answers the client\'s RCPT with the result: 550 5.1.1 with the remote\'s text when the address does not exist, 450 4.1.1 while the probe is pending or the route is unreachable. Default: "probe" for protocol = "lmtp" routes, "off" otherwise. See [recipient_verification].'),
}).superRefine((r, ctx) => {
  if ((r.hosts === undefined) === (r.socket === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'a route needs exactly one of hosts or socket' });
  }
  if (r.socket !== undefined && r.protocol !== 'lmtp') {
    ctx.addIssue({ code: 'custom', path: ['socket'], message: 'socket is for protocol = "lmtp" routes' });
  }
});

export const routeSchema = z.union([hostPort, z.array(hostPort).min(1), routeTable]);

const mailbox = z.strictObject({
  user: z.string().min(1).max(64).refine(safeSegment, UNSAFE_SEGMENT).describe('Local part of the mailbox.'),
  quota: size('0', 'Mailbox quota; 0 means unlimited.'),
});

const domain = z.strictObject({
  name: z.string().min(1).max(255).refine(safeSegment, UNSAFE_SEGMENT).describe('A local domain: mail to it is delivered to mailboxes under data_dir.'),
  mailboxes: z.array(mailbox).default([]).describe('The mailboxes of this domain.'),
  aliases: z.record(z.string(), z.array(z.string().min(1))).default({})
    .describe('local part → targets (local users or full remote addresses).'),
  catch_all: z.string().optional().describe('Mailbox (local user) that gets mail for unknown local parts; unset → 550 5.1.1.'),
  over_quota_reply: z.enum(['552', '452']).default('552')
    .describe('Reply to RCPT for a full mailbox: "552" (552 5.2.2, permanent) or "452" (452 4.2.2, temporary).'),
});

const user = z.strictObject({
  name: z.string().min(1).describe('Login name for AUTH.'),
  password_hash: z.string().regex(/^scrypt\$/, 'expected a hash made by `halcyon user add`').describe('scrypt hash from `halcyon user add NAME`.'),
  senders: z.array(z.string().regex(/^([^@\s]+)?@[^@\s]+$/, 'expected "user@domain" or "@domain"')).optional()
    .describe('MAIL FROM addresses this user may use once authenticated: "alice@example.test" or a whole domain "@example.test"; others get 553 5.7.1. Unset → any sender (the null sender <> is always allowed).'),
  tenant: z.string().min(1).max(128).optional()
    .describe('The tenant of the mail this user sends (queue list, logs, events, metrics); unset → the user name. An X-Halcyon-Tenant header in the message names another (and is removed).'),
});

const dkimKey = z.strictObject({
  domain: z.string().min(1).max(253).describe('Signing domain (d=): mail whose From: domain is this one or a subdomain of it is signed with this key.'),
  selector: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'expected a selector like "s2026"')
    .describe('Selector (s=): the public key is published as a TXT record at SELECTOR._domainkey.DOMAIN.'),
  key: z.string().min(1).describe('PEM file of the private key (`halcyon dkim keygen` writes one and prints its TXT record).'),
  algorithm: z.enum(['rsa-sha256', 'ed25519-sha256']).default('rsa-sha256').describe('"rsa-sha256" (an RSA key) or "ed25519-sha256" (an Ed25519 key, RFC 8463).'),
  headers: z.array(z.string().regex(/^[\x21-\x39\x3b-\x7e]+$/, 'expected a header field name')).optional()
    .describe('Header fields to sign where present (default: From, Reply-To, Subject, Date, To, Cc, Message-ID, In-Reply-To, References, MIME-Version, Content-Type, Content-Transfer-Encoding, Sender, List-Id, List-Unsubscribe, List-Unsubscribe-Post). From is always signed; From, Subject and To are oversigned.'),
});

/** One `[[arc]]` entry: the key that seals forwarded mail (RFC 8617). */
const arcKey = z.strictObject({
  domain: z.string().min(1).max(253).describe('Sealing domain (d=): mail forwarded by an alias of this local domain, or of a subdomain of it, is sealed with this key (the first entry seals what no entry\'s domain matches).'),
  selector: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'expected a selector like "arc2026"')
    .describe('Selector (s=): the public key is published as a TXT record at SELECTOR._domainkey.DOMAIN, as for DKIM.'),
  key: z.string().min(1).describe('PEM file of the private key (`halcyon dkim keygen DOMAIN SELECTOR` makes one).'),
  algorithm: z.enum(['rsa-sha256', 'ed25519-sha256']).default('rsa-sha256').describe('"rsa-sha256" (an RSA key) or "ed25519-sha256" (an Ed25519 key).'),
});

/** The recipient events (queue/event, docs/events.md); a sink takes all of them unless it names some. */
export const EVENT_TYPES = [
  'received', 'delivered', 'deferred', 'bounced', 'expired', 'suppressed', 'dsn_sent', 'rule_triggered',
] as const;
const eventList = z.array(z.enum(EVENT_TYPES)).min(1).default([...EVENT_TYPES])
  .describe(`The event types this sink gets (${EVENT_TYPES.join(', ')}); unset → all.`);
const sinkName = z.string().regex(/^[\x21-\x7e]{1,64}$/, 'expected a name of 1–64 printable characters without spaces').optional()
  .describe('The sink\'s name: its outbox rows, metric label and `halcyon events status` line. Unset → "webhook-N" / "amqp-N" by position; keep it stable, events waiting under an old name are not sent.');

const webhookSink = z.strictObject({
  name: sinkName,
  url: z.string().regex(/^https?:\/\//, 'expected an http:// or https:// URL').describe('Where each batch of events is POSTed, as a JSON array.'),
  secret: z.string().min(1).describe('The HMAC-SHA256 key of the X-Halcyon-Signature header (docs/events.md says how a receiver checks it).'),
  events: eventList,
  batch: z.number().int().min(1).max(1000).default(100).describe('Most events in one POST.'),
  timeout: duration('10s', 'How long one POST may take; past it the batch is retried later.'),
});

const amqpSink = z.strictObject({
  name: sinkName,
  url: z.string().regex(/^amqps?:\/\//, 'expected "amqp://user:password@host:port/vhost"').describe('The broker (AMQP 0-9-1, e.g. RabbitMQ).'),
  exchange: z.string().default('').describe('The exchange each event is published to ("" → the default exchange, routing by queue name). It is not declared here: make it on the broker.'),
  routing_key: z.string().default('halcyon.{type}').describe('Routing key of each event; "{type}" becomes the event type.'),
  events: eventList,
  batch: z.number().int().min(1).max(1000).default(100).describe('Most events published before waiting for the broker\'s confirms.'),
  timeout: duration('10s', 'How long connecting and the confirms of one batch may take; past it the batch is retried later.'),
});

/** A source or pool name: it ends up in destination keys (`mx:…@NAME`), log lines and the CLI. */
const egressName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a name of 1–64 letters, digits, "_", "." or "-"');

/** `[egress]`: source addresses, the pools that weigh them, and which pool mail takes (destination/sources). */
const egress = z.strictObject({
  sources: z.array(z.strictObject({
    name: egressName.describe('The source\'s name: shown in `halcyon destinations`, the delivery log lines (`source`) and the keys of its politeness state (`mx:…@NAME`, `provider:google@NAME`).'),
    address: z.string().refine((s) => isIP(s) !== 0, { message: 'expected an IPv4 or IPv6 address of this host' })
      .describe('The local address outbound connections bind to (the sending IP the remote sees). It must be configured on this host. Next hops of the other address family are not tried from this source.'),
    ehlo_name: z.string().regex(HOSTNAME, HOSTNAME_MESSAGE).optional()
      .describe('Name sent in EHLO from this source (the name its address\'s PTR record gives, for a good reputation); unset → delivery.helo_name, else hostname.'),
    warmup: z.array(z.string().refine((s) => parseDailyCap(s) !== undefined, { message: 'expected a daily cap like "50/day"' })).default([])
      .describe('Warm-up schedule: messages per UTC day this source may send to each provider (or each destination that is no provider\'s), day 1 first: ["50/day", "100/day", …]. Day N applies on the Nth UTC day since the source was first used (kept in the queue, shared by every node); after the last day, no cap. Over the cap, mail waits for the next day (deferred, no attempt counted, never bounced). Empty → no cap.'),
  })).default([])
    .describe('Source addresses ([[egress.sources]]). None → connections leave from the address the system picks, as without [egress].'),
  pools: z.array(z.strictObject({
    name: egressName.describe('The pool\'s name (routes\' pool, tenant_pools, default_pool).'),
    sources: z.array(z.strictObject({
      source: egressName.describe('A [[egress.sources]] name.'),
      weight: z.number().int().min(1).max(1000).default(1).describe('Its share of the pool\'s messages (smooth weighted round robin, per destination).'),
    })).min(1).describe('The pool\'s sources and weights: [{ source = "a", weight = 3 }, { source = "b", weight = 1 }].'),
  })).default([])
    .describe('Pools of sources ([[egress.pools]]): each message goes out from one source of its pool, chosen by weight; a source paused for a destination (backoff, a reply rule, its warm-up cap) is skipped while another can take the mail.'),
  default_pool: egressName.optional().describe('The pool of mail that neither its route nor its tenant assigns one; unset → the first pool listed.'),
  tenant_pools: z.record(z.string(), egressName).default({})
    .describe('tenant → pool: the mail of that tenant (the injection API\'s tenant, the AUTH user\'s) goes out from that pool, unless its route names one.'),
}).prefault({}).superRefine((e, ctx) => {
  const dup = (names: readonly string[]): string | undefined => names.find((n, i) => names.indexOf(n) !== i);
  const sources = e.sources.map((s) => s.name);
  const pools = e.pools.map((p) => p.name);
  const ds = dup(sources);
  if (ds !== undefined) ctx.addIssue({ code: 'custom', path: ['sources'], message: `two sources are named "${ds}"` });
  const dp = dup(pools);
  if (dp !== undefined) ctx.addIssue({ code: 'custom', path: ['pools'], message: `two pools are named "${dp}"` });
  e.pools.forEach((p, i) => {
    p.sources.forEach((s, j) => {
      if (!sources.includes(s.source)) ctx.addIssue({ code: 'custom', path: ['pools', i, 'sources', j, 'source'], message: `pool "${p.name}" names an unknown source "${s.source}"` });
    });
    const twice = dup(p.sources.map((s) => s.source));
    if (twice !== undefined) ctx.addIssue({ code: 'custom', path: ['pools', i, 'sources'], message: `pool "${p.name}" lists source "${twice}" twice` });
  });
  if (e.sources.length > 0 && e.pools.length === 0) ctx.addIssue({ code: 'custom', path: ['pools'], message: 'sources need at least one [[egress.pools]] entry to be used' });
  if (e.pools.length > 0 && e.sources.length === 0) ctx.addIssue({ code: 'custom', path: ['sources'], message: 'pools need [[egress.sources]]' });
  if (e.default_pool !== undefined && !pools.includes(e.default_pool)) ctx.addIssue({ code: 'custom', path: ['default_pool'], message: `unknown pool "${e.default_pool}"` });
  for (const [tenant, pool] of Object.entries(e.tenant_pools)) {
    if (!pools.includes(pool)) ctx.addIssue({ code: 'custom', path: ['tenant_pools', tenant], message: `tenant "${tenant}" names an unknown pool "${pool}"` });
  }
});

export const configSchema = z.strictObject({
  hostname: z.string().regex(HOSTNAME, HOSTNAME_MESSAGE).default(osHostname()).describe('Name used in the greeting, EHLO and Received headers.'),
  node_id: z.string().min(1).max(128).default(osHostname())
    .describe('This node\'s name on the queue: it owns the recipients and connection slots this node leases, and on start it takes back only its own. Stable across restarts and different for every node sharing one queue; default: the machine\'s hostname.'),
  data_dir: z.string().default('./var').describe('Where the queue, mailboxes and generated TLS certificate live.'),
  postmaster: z.string().regex(/^[^@\s<>]+@[^@\s<>]+$/, 'expected an address "user@domain"').default('postmaster@localhost').describe('Address that gets reports of DSNs that could not be delivered.'),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('Minimum log level.'),
  log_format: z.enum(['json', 'pretty']).default('json').describe('JSON lines, or a pretty format for a terminal.'),
  log: z.strictObject({
    time: z.enum(['iso', 'epoch']).default('iso')
      .describe('How a JSON log line writes its `time`: "iso" (UTC, `2026-12-07T00:12:34.567Z`, readable and sortable as text) or "epoch" (milliseconds since 1970, as pino writes it). The pretty format always shows ISO time.'),
  }).prefault({}).describe('Log lines.'),

  smtp: z.strictObject({
    listen: z.array(listenAddress).default(['127.0.0.1:2525']).describe('Relay/MX listeners ("host:port").'),
    max_message_size: size('35MiB', 'Largest message accepted (advertised with SIZE).'),
    max_recipients: z.number().int().min(1).default(1000).describe('Most RCPT accepted per transaction; more get 452 4.5.3.'),
    max_connections: z.number().int().min(1).default(1000).describe('Most concurrent inbound connections; more get 421 4.7.0.'),
    max_connections_per_ip: z.number().int().min(1).default(100).describe('Most concurrent connections from one client IP.'),
    max_errors: z.number().int().min(1).default(20).describe('Protocol errors in one session before it is closed with 421.'),
    bare_newline: z.enum(['normalize', 'reject']).default('normalize')
      .describe('Bare CR or LF in DATA: "normalize" to CRLF, or "reject" with 550 5.5.2.'),
    command_timeout: duration('5m', 'Idle time allowed waiting for a command (RFC 5321 §4.5.3.2.7).'),
    data_timeout: duration('3m', 'Idle time allowed between data blocks (RFC 5321 §4.5.3.2.5).'),
    max_received_headers: z.number().int().min(1).default(50).describe('This many Received headers or more → 554 5.4.6 (mail loop).'),
    auth_failure_delay: duration('1s', 'A failed AUTH is answered only after this long (per attempt; slows password guessing).'),
    auth_max_failures: z.number().int().min(1).default(10)
      .describe('AUTH failures from one client IP within auth_lockout after which AUTH from it is refused (454 4.7.0) until they age out.'),
    auth_lockout: duration('15m', 'The window in which auth_max_failures failures lock an address out of AUTH.'),
    greeting_delay: duration('0s', 'Wait before the 220 greeting; a client that talks first gets 554 5.5.0 (0s = greet at once).'),
  }).prefault({}).describe('The relay/MX listener.'),

  submission: z.strictObject({
    listen: z.array(listenAddress).default([]).describe('Submission listeners (port 587); AUTH is required there, after STARTTLS.'),
    tls_listen: z.array(listenAddress).default([])
      .describe('Implicit-TLS submission listeners (port 465, RFC 8314): TLS from the first byte, then the same policy as listen (AUTH required).'),
  }).prefault({}).describe('Authenticated submission.'),

  tls: z.strictObject({
    cert: z.string().min(1).optional().describe('PEM certificate chain; unset → a self-signed one generated once into data_dir.'),
    key: z.string().min(1).optional().describe('PEM private key for cert.'),
  }).refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'set both cert and key, or neither (a self-signed pair is generated)' })
    .prefault({}).describe('Inbound TLS (STARTTLS).'),

  relay: z.strictObject({
    networks: z.array(z.string().refine((s) => parseCidr(s) !== undefined,
      { message: 'expected an IP address or CIDR: IPv4 prefix 0–32 ("10.0.0.0/8"), IPv6 prefix 0–128 ("::1/128")' }))
      .default(['127.0.0.0/8', '::1/128'])
      .describe('CIDRs whose clients may relay; others may only send to local domains unless authenticated.'),
  }).prefault({}).describe('Relay policy.'),

  inbound: z.strictObject({
    dnsbl: z.array(z.union([
      z.string().min(1),
      z.strictObject({
        zone: z.string().min(1).describe('The list\'s DNS zone, e.g. "zen.spamhaus.org".'),
        codes: z.array(z.string().regex(/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/, 'expected an answer like "127.0.0.2"')).min(1)
          .describe('A answers that mean "listed" (others are ignored).'),
      }),
    ])).default([])
      .describe('DNS blocklists checked once per connection on the MX listener ("zone", or { zone, codes }); a listed client gets 554 5.7.1 at RCPT. Without codes any 127.0.0.0/8 answer but 127.255.255.x counts. Clients in relay.networks and authenticated ones are never checked; a DNS failure never rejects.'),
    connection_rate_limit: z.number().int().min(0).default(300)
      .describe('Connections one client IP may open per minute (any listener); more get 421 4.7.0. 0 = no limit. Not applied to relay.networks.'),
    message_rate_limit: z.number().int().min(0).default(600)
      .describe('Messages (MAIL FROM) one client IP may start per minute; more get 450 4.7.1. 0 = no limit. Not applied to relay.networks.'),
    recipient_rate_limit: z.number().int().min(0).default(3000)
      .describe('Recipients (RCPT TO) one AUTH user may give per minute; more get 450 4.7.1. 0 = no limit. Not applied to relay.networks.'),
    verify: z.boolean().default(true)
      .describe('Verify SPF (MAIL FROM and HELO), DKIM, DMARC and ARC of mail from outside on the MX listener (not submission, authenticated or [relay] networks clients) and write one Authentication-Results header naming hostname. DNS through [dns].'),
    dmarc: z.enum(['tag', 'enforce']).default('tag')
      .describe('"tag": only the Authentication-Results header. "enforce": a DMARC failure under p=reject gets 550 5.7.1 at end of data (nothing queued), under p=quarantine the message is quarantined (see quarantine); a DNS failure that leaves it undecided gets 451 4.7.5.'),
    quarantine: z.enum(['header', 'junk']).default('junk')
      .describe('What quarantined mail gets: "header" (an X-Halcyon-Quarantine header), or "junk" (the header, and local delivery into the mailbox\'s Junk folder, Maildir++ ".Junk").'),
  }).prefault({}).describe('Checks on inbound clients and their mail: DNS blocklists (MX listener), per-client rate limits (Postfix anvil style, per minute), and SPF/DKIM/DMARC/ARC verification of mail from outside.'),

  users: z.array(user).default([]).describe('Accounts for AUTH PLAIN/LOGIN.'),

  routes: z.record(z.string(), routeSchema).default({})
    .describe('domain → "host:port", a list, or { hosts | socket, protocol, tls, auth, verify }; "*" is a smarthost for every other domain. A route skips MX lookup. verify = "probe" turns on recipient verification for the route\'s domain (a RCPT for an address not yet known is checked with MAIL FROM:<>, RCPT TO, QUIT on the route and answered 550 5.1.1 / 450 4.1.1 by the result; see [recipient_verification]); "off" turns it off. Default: "probe" for protocol = "lmtp" routes, "off" for the others.'),

  recipient_verification: z.strictObject({
    wait: duration('6s', 'How long a RCPT waits for a probe in flight (its own or one another client started) before it is answered 450 4.1.1 (the probe goes on; the client\'s retry finds the answer cached). Postfix waits up to about 6 s too (address_verify_poll_count × poll_delay).'),
    unreachable: z.enum(['defer', 'accept']).default('defer')
      .describe('When a probe cannot get an answer about the address (the route is down or in backoff, a 4xx to RCPT, the destination\'s connections all in use): "defer" answers 450 4.1.1 (the client retries later), "accept" takes the recipient (as if verification were off).'),
    positive_refresh: duration('7d', 'After this long a cached "exists" is probed again (the cached answer is still used meanwhile). Postfix: address_verify_positive_refresh_time.'),
    positive_expire: duration('31d', 'After this long a cached "exists" is forgotten. Postfix: address_verify_positive_expire_time.'),
    negative_refresh: duration('3h', 'After this long a cached "does not exist" is probed again (the cached answer is still used meanwhile). Postfix: address_verify_negative_refresh_time.'),
    negative_expire: duration('3d', 'After this long a cached "does not exist" is forgotten. Postfix: address_verify_negative_expire_time.'),
  }).prefault({}).describe('Recipient verification on routes with verify = "probe": the cache of probe answers, kept in the queue store and shared by every node, and how a RCPT waits for a probe. Probes obey the destination\'s gate (connection cap, backoff, one probe after a backoff) like deliveries.'),

  dns: z.strictObject({
    servers: z.array(z.string().refine((s) => parseResolverAddress(s) !== undefined,
      { message: 'expected an IP address, "ip:port" or "[v6]:port" (port 1–65535)' })).default([]).describe('Resolvers ("127.0.0.1:5353"); empty → the system resolvers.'),
    timeout: duration('5s', 'Per-query timeout.'),
    selftest_signed: z.string().regex(DNS_NAME, 'expected a domain name').default('ietf.org')
      .describe('A DNSSEC-signed name the DANE self-test asks at startup: a validating resolver answers it with the AD bit. Point it at a name of your own zone in a private deployment.'),
    selftest_bogus: z.string().regex(DNS_NAME, 'expected a domain name').default('dnssec-failed.org')
      .describe('A name with broken DNSSEC signatures the DANE self-test asks at startup: a validating resolver refuses it with SERVFAIL.'),
  }).prefault({}).describe('DNS resolution for delivery and for inbound verification (SPF, DKIM, DMARC, ARC; answers cached for a minute).'),

  shaping: z.strictObject({
    enabled: z.boolean().default(true)
      .describe('Apply the shipped provider presets (data/providers.toml, docs/shaping.md): connections, messages per connection, paced rate, TLS policy and reply rules per mailbox provider, matched by MX host suffix. Their rules act on the whole provider.'),
    providers: z.record(z.string().regex(/^[a-z0-9-]+$/, 'expected a provider name like "google"'), z.strictObject({
      enabled: z.boolean().default(true).describe('false: the shipped preset of this name is not applied.'),
      ...providerSettings,
    })).default({})
      .describe('Per provider ([shaping.providers.google]): override any field of the shipped preset, turn it off (enabled = false), or add a provider of your own (with mx).'),
    rate_increase: z.number().min(0).default(6)
      .describe('The adaptive rate\'s additive increase: after a slow_down, each minute\'s worth of deliveries raises the rate by this many messages per minute, up to the preset\'s rate (AIMD).'),
  }).prefault({}).describe('Provider shaping (docs/shaping.md): presets for the large mailbox providers, on by default, and the adaptive message rate.'),

  tenants: z.record(z.string().min(1).max(128), tenantLimits).default({})
    .describe('Per tenant ([tenants.acme], the name as the tenant is given: the injection API, X-Halcyon-Tenant or [[users]] tenant): its message rate and its weight in the fair claim. Tenants not listed have no rate and weight 1. See docs/shaping.md.'),

  egress: egress.describe('Source addresses, pools and warm-up (docs/shaping.md, "Sources, pools and warm-up"): which local address each outbound connection leaves from; politeness (connections, backoff, learned limits, reply rules, provider rates) is then kept per source and destination.'),

  delivery: z.strictObject({
    port: z.number().int().min(1).max(65535).default(25).describe('Remote SMTP port for MX deliveries.'),
    helo_name: z.string().regex(HOSTNAME, HOSTNAME_MESSAGE).optional().describe('Name sent in EHLO; unset → hostname.'),
    tls: tlsPolicy.default('opportunistic').describe('Default TLS policy: none, opportunistic (STARTTLS when offered), required, verify.'),
    tls_ca_file: z.string().optional()
      .describe('PEM file of CA certificates trusted besides the system roots, for certificate checks (tls = "verify", MTA-STS, the MTA-STS policy fetch): for tests and private deployments with their own CA.'),
    mta_sts: z.boolean().default(true)
      .describe('Honour MTA-STS (RFC 8461) for MX deliveries: under an "enforce" policy only the MX hosts it names, over TLS with a verified certificate, never plaintext (failures defer); "testing" policies are logged. Sessions are counted per policy domain (TLS-RPT) in `halcyon destinations`.'),
    dane: z.enum(['auto', 'off']).default('auto')
      .describe('DANE (RFC 7672) for MX deliveries. "auto": on when the startup self-test shows that the resolver validates DNSSEC (it asks [dns] selftest_signed and selftest_bogus of [dns] servers, or of the system resolvers when those are all on this host); a domain with a DNSSEC-signed MX set and TLSA records is then delivered only to MX hosts whose certificate matches them, never in plaintext, and its MTA-STS policy is not used. When the self-test fails DANE is off and the reason is logged (event=dane_selftest). "off": never. Read at start.'),
    mta_sts_hosts: z.record(z.string(), hostPort).default({})
      .describe('MTA-STS policy host → "host:port" to fetch its policy from instead of DNS and port 443 (e.g. "mta-sts.example.test" = "127.0.0.1:8443"): for tests and private deployments.'),
    retry_initial: duration('5m', 'First retry delay for a deferred recipient.'),
    retry_max: duration('4h', 'Longest retry delay (delays double up to this, ±10 % jitter).'),
    max_queue_lifetime: duration('5d', 'Age after which an undelivered recipient expires (and is bounced).'),
    delay_warning_after: duration('4h', 'Age after which a delay DSN is sent once (when NOTIFY asks).'),
    destination_backoff: duration('1m', 'First backoff of a destination after a connection-level failure.'),
    destination_backoff_max: duration('1h', 'Longest destination backoff (doubles up to this).'),
    max_connections: z.number().int().min(1).default(100).describe('Most concurrent outbound connections.'),
    max_connections_per_destination: z.number().int().min(1).default(10).describe('Most concurrent connections to one destination (the cap adaptive concurrency grows to).'),
    initial_connections_per_destination: z.number().int().min(1).default(5)
      .describe('Connections a destination starts with; each successful session grows it towards the cap, a "too many connections" reply or a connect timeout shrinks it (never below 1).'),
    destination_by: z.enum(['mx', 'domain']).default('mx')
      .describe('What a destination is: "mx" — the set of MX hosts a domain resolves to (domains sharing MX hosts share backoff, connections and limits); "domain" — each recipient domain. Routes are always "route:…".'),
    destination_cache_ttl: duration('1h', 'The longest a domain\'s MX host set (its destination key) is remembered before it is looked up again: each is remembered for its MX records\' TTL, at most this, at least 60 s (this when the TTL cannot be read).'),
    learned_limit_ttl: duration('1d', 'How long a learned recipient limit or connection ceiling of a destination is kept.'),
    rules: z.array(replyRule).default([])
      .describe('Reply rules ([[delivery.rules]]): the first rule whose destination glob, code and regex match a reply acts (suspend, set, bounce, slow_down). They are read before the provider presets\' rules ([shaping], data/providers.toml). See examples/reply-rules.toml and docs/shaping.md.'),
    destination_rate: z.string().refine((s) => parseRate(s) !== undefined, { message: 'expected a rate like "100/min"' })
      .optional().describe('Optional message rate cap per destination ("100/min").'),
    max_messages_per_connection: z.number().int().min(1).default(100).describe('Transactions on one connection before it is closed.'),
    max_recipients_per_transaction: z.number().int().min(1).default(100).describe('Recipients in one transaction (RFC 5321 §4.5.3.1.8 minimum is 100).'),
    max_mx_hosts: z.number().int().min(1).default(5).describe('MX hosts tried per attempt.'),
    connection_idle_timeout: duration('5s', 'How long an idle outbound connection is kept for reuse.'),
    mailbox_full: z.enum(['permanent', 'transient']).default('permanent')
      .describe('A remote 552 5.2.2 to RCPT: permanent (DSN at once) or transient (retried until the queue lifetime ends).'),
    lease: duration('10m', 'How long a recipient claimed for delivery stays claimed if its worker dies.'),
    queue_scan_interval: duration('1s', 'How often the scheduler looks for due recipients when idle.'),
    timeouts: z.strictObject({
      connect: duration('30s', 'TCP connect.'),
      greeting: duration('5m', 'Initial 220 (RFC 5321 §4.5.3.2.1).'),
      command: duration('5m', 'EHLO, MAIL, RCPT, RSET replies (§4.5.3.2.2-3).'),
      data_init: duration('2m', 'DATA → 354 (§4.5.3.2.4).'),
      data_block: duration('3m', 'Each block written (§4.5.3.2.5).'),
      data_done: duration('10m', 'End of data → reply (§4.5.3.2.6).'),
    }).prefault({}).describe('Outbound SMTP timeouts.'),
  }).prefault({}).describe('Outbound delivery.'),

  bounces: z.strictObject({
    rules: z.array(z.string().min(1)).default([])
      .describe('Extra bounce classification rule files (TOML, `[[rule]]` tables: class, text, enhanced, code, phase), read in order before the shipped data/bounce-classes.toml, so their rules win. Every recipient outcome carries the class the first matching rule gives (docs/operations.md, "Bounce classes").'),
  }).prefault({}).describe('Bounce classes: the label (InvalidRecipient, QuotaIssues, SpamBlock …) on every recipient outcome, in logs, events, DSNs, `queue show`, the admin API and /metrics.'),

  suppression: z.strictObject({
    enabled: z.boolean().default(true)
      .describe('Keep the suppression list: a permanent failure whose bounce class speaks for the address (InvalidRecipient, BadDomain, InactiveMailbox) puts it on the list, shared by every node; later mail to it is refused at RCPT (relay and submission clients: 550 5.1.1 … recipient suppressed since …) or, already queued, fails without a connection. Never for quota, policy, reputation, authentication, rate limits, content, nor any 4xx.'),
    ttl: duration('30d', 'How long an address stays on the suppression list after its last suppressing failure (or after an operator added it).'),
  }).prefault({}).describe('The suppression list (docs/operations.md, "Suppression list"); `halcyon suppression list|add|remove|import|export` and the admin API manage it.'),

  domains: z.array(domain).default([{ name: 'localhost', mailboxes: [{ user: 'postmaster', quota: '100MiB' }], aliases: {}, over_quota_reply: '552' }])
    .describe('Local domains and their mailboxes.'),

  aliases: z.strictObject({
    file: z.string().min(1).optional()
      .describe('An aliases file in /etc/aliases format for every local domain ([[domains]]): `name: target, target` (a name is a local part; a target is a local user, to whom the recipient\'s own domain is added, or a full address), `:include:/path` (the addresses in that file), `#` comment lines, and lines that start with blanks continuing the entry above. A domain\'s own `aliases` win over it. No delivery to a command (`|cmd`) or a file (`/path`): such a target is refused, logged (`aliases_refused`) and printed by `config check` and `halcyon newaliases`. Read again when it or a file it includes changes, on SIGHUP, and by `halcyon newaliases`. A file that cannot be read stops the server from starting; later, the aliases in force stay. Unset → none (docs/operations.md, "Aliases file").'),
    check_interval: duration('2s', 'How often the aliases file and the files it includes are checked for a change (modification time, size, inode).'),
  }).prefault({}).describe('The aliases file (/etc/aliases format) of the local domains.'),

  dkim: z.array(dkimKey).default([])
    .describe('DKIM signing keys. Mail that is ours (submission, authenticated or [relay] networks clients, injection, sendmail, DSNs) is signed once, before it is queued, with the key of its From: domain or the nearest parent domain that has one.'),

  arc: z.array(arcKey).default([])
    .describe('ARC sealing keys (RFC 8617). Mail from outside that an alias forwards to a remote address gets an ARC set (ARC-Authentication-Results with the result of the checks, ARC-Message-Signature, ARC-Seal) before it is queued, so the final receiver can trust the authentication it passed here. Needs [inbound] verify. None → nothing is sealed.'),

  tls_rpt: z.strictObject({
    send: z.boolean().default(false)
      .describe('Send the daily TLS-RPT aggregate reports (RFC 8460) to the domains whose `_smtp._tls` TXT record asks for them (by HTTPS POST, or by mail DKIM-signed when the From domain has a [[dkim]] key). The session counts are kept in the queue either way; with false, each day\'s are dropped once the day is over.'),
    organization: z.string().min(1).optional().describe('The report\'s organization-name; unset → hostname.'),
    contact: z.string().min(1).optional().describe('The report\'s contact-info (an address or a URL); unset → postmaster.'),
    from: z.string().regex(/^[^@\s<>]+@[^@\s<>]+$/, 'expected an address "user@domain"').optional()
      .describe('From: and envelope sender of reports sent by mail; unset → postmaster. DKIM-signed with the [[dkim]] key of its domain, when there is one.'),
    interval: duration('15m', 'How often the reports of the days that are over are looked for and sent (each domain-day by one node of a cluster).'),
  }).prefault({}).describe('TLS-RPT (RFC 8460): the daily reports of MTA-STS and DANE sessions to the domains that ask for them.'),

  server: z.strictObject({
    workers: z.union([z.literal('auto'), z.number().int().min(0).max(256)]).default(0)
      .describe('SMTP session worker threads: each runs its own listener on every smtp/submission address (SO_REUSEPORT, so the kernel spreads new connections over them), the sessions, SPF/DKIM/DMARC checks, DKIM signing and the queue writes of what it accepts; the queue thread, the scheduler, outbound delivery and the admin API stay on the main thread, and the connection limits, rates and AUTH lockouts stay per node (decision 0017). 0 → the sessions run on the main thread (the default: a start costs no extra threads, which embedded use and the test suites rely on); "auto" → one per core (os.availableParallelism()); N → N. Worth it where the main thread is the bound (`BENCH_ONLY=cores`, docs/benchmarks.md). A worker that dies is started again; the mail it had accepted is in the queue.'),
  }).prefault({}).describe('How the server uses the machine\'s cores.'),

  queue: z.strictObject({
    backend: z.enum(['sqlite', 'postgres']).default('sqlite')
      .describe('Where the queue lives: "sqlite" (one node, a file under data_dir) or "postgres" (one database shared by every node; see docs/cluster.md).'),
    url: z.string().regex(/^postgres(ql)?:\/\//, 'expected "postgres://user@host:port/database"').optional()
      .describe('The PostgreSQL database of a "postgres" queue ("postgres://user@host:port/database"; a password may be given as PGPASSWORD). Every node of the cluster names the same one.'),
    prepared_statements: z.boolean().default(true)
      .describe('A "postgres" queue sends its statements as named prepared statements (each parsed once per connection). Set false behind PgBouncer in transaction pooling mode before 1.21 (or with max_prepared_statements = 0), where a connection\'s prepared statements are not there in the next transaction: every statement is then parsed each time (unnamed). PgBouncer must also pass or ignore the startup parameter "options" (ignore_startup_parameters = options), which then leaves synchronous_commit to the server\'s setting: keep it on (docs/cluster.md).'),
  }).prefault({}).refine((q) => q.backend !== 'postgres' || q.url !== undefined, { message: 'backend "postgres" needs url', path: ['url'] })
    .describe('The queue\'s storage.'),

  events: z.strictObject({
    webhooks: z.array(webhookSink).default([]).describe('HTTP sinks: each batch of events is POSTed as a JSON array, signed (docs/events.md).'),
    amqp: z.array(amqpSink).default([]).describe('AMQP sinks: each event is published as one persistent message, with publisher confirms.'),
    retry_max: duration('60s', 'The longest wait between two tries of a sink that fails (the wait starts at 1s and doubles).'),
  }).prefault({}).superRefine((e, ctx) => {
    const names = [...e.webhooks.map((w, i) => w.name ?? `webhook-${i + 1}`), ...e.amqp.map((a, i) => a.name ?? `amqp-${i + 1}`)];
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) ctx.addIssue({ code: 'custom', message: `two event sinks are named "${dup}"`, path: ['webhooks'] });
  }).describe('Recipient events (docs/events.md): written to an outbox in the queue with each state change, and sent at least once to each sink, retried with backoff until acknowledged.'),

  inject: z.strictObject({
    max_recipients: z.number().int().min(1).default(1000)
      .describe('Most recipients in one request to POST /api/inject/v1 (or /api/messages); more → 413 too_many_recipients, nothing queued.'),
    rate: z.number().min(0).default(50)
      .describe('Requests per second each API token may make to the injection API (a token bucket per token, per node); 0 → unlimited. Past it: 429 with Retry-After.'),
    burst: z.number().int().min(1).default(100).describe('How many requests a token may make at once before `rate` paces it (the bucket\'s size).'),
    metric_tenants: z.number().int().min(0).default(100)
      .describe('Distinct tenants that get a label value of their own on halcyon_messages_accepted_by_tenant_total (first come); the rest count as "other", so the metric\'s cardinality stays bounded.'),
  }).prefault({}).describe('The injection API, POST /api/inject/v1 on the admin listener (docs/events.md): its limits.'),

  http: z.strictObject({
    listen: z.string().refine((s) => s === '' || (HOST_PORT.test(s) && portOf(s) <= 65535), 'expected "host:port" (port 0–65535), or "" to disable the API')
      .optional().default(HTTP_DEFAULTS.listen)
      .describe('Admin API, /metrics and dashboard ("host:port"); "" disables it.'),
    token: z.string().optional().describe('Bearer token required on any non-loopback listener.'),
    tokens: z.array(z.strictObject({
      name: z.string().regex(/^[\x21-\x7e]{1,64}$/, 'expected a name of 1–64 printable characters without spaces').describe('Logged as `who` on every admin action taken with this token.'),
      token: z.string().min(1).describe('The bearer token.'),
    })).default([])
      .describe('Named bearer tokens, each accepted like `token`; the name is logged as `who` on every admin action taken with it (actions with `token` log "http.token"). The CLI sends `token`, or $HALCYON_TOKEN when set.'),
    enabled: z.boolean().default(HTTP_DEFAULTS.enabled).describe('Serve the admin API at all.'),
    require_token: z.boolean().default(false)
      .describe('Require the bearer token on a loopback listener too (it is always required on any other address).'),
  }).prefault({}).describe('Admin HTTP API and metrics.'),
}).superRefine((c, ctx) => {
  // A route's pool names one of [[egress.pools]] (the two tables are far apart; checked here).
  const pools = c.egress.pools.map((p) => p.name);
  for (const [domain, route] of Object.entries(c.routes)) {
    if (typeof route !== 'object' || Array.isArray(route) || route.pool === undefined) continue;
    if (!pools.includes(route.pool)) ctx.addIssue({ code: 'custom', path: ['routes', domain, 'pool'], message: `route "${domain}" names an unknown pool "${route.pool}"` });
    if (route.socket !== undefined) ctx.addIssue({ code: 'custom', path: ['routes', domain, 'pool'], message: 'a socket route has no source address: pool is for routes with hosts' });
  }
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type DomainConfig = Config['domains'][number];
export type TlsPolicy = z.output<typeof tlsPolicy>;
export type ReplyRuleConfig = z.output<typeof replyRule>;
export type ProviderRuleConfig = z.output<typeof providerRule>;

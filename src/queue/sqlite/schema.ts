/**
 * queue/sqlite/schema — the SQLite schema of the default queue store and the
 * pragmas it runs under. Versioned with `PRAGMA user_version`; a database made
 * by a newer Halcyon is refused rather than guessed at.
 *
 * Bodies live in the database (docs/decisions/0002-bodies-in-sqlite.md) so one
 * commit covers a message's row, its recipients and its body. Deleting a
 * message cascades to its body, recipients and their attempt history.
 *
 * Version 2 adds what several nodes need to agree on (issue #15): report claims on
 * recipients, a generation and learned limits on destinations, leased
 * connection slots and a shared rate bucket.
 *
 * Version 3 lets a body live in a spool segment instead (queue/spool,
 * docs/decisions/0005-large-bodies-in-spool-segments.md): `data` is then
 * empty and `segment`/`offset`/`length` say where the bytes are.
 *
 * Version 4 adds the event outbox (issue #24, queue/event): one row per event
 * and sink, written in the transaction of the state change it reports, leased
 * while a node sends it and deleted once the sink acknowledged it; and each
 * message's event facts (its Message-ID, tenant, campaign, metadata).
 *
 * Version 5 adds the recipient verification cache (issue #22,
 * queue/verify-cache): one row per address a probe answered definitely.
 *
 * Version 6 adds the TLS-RPT session counts (issue #28, queue/tls-reports):
 * one row per day, policy domain, policy type, result and receiving host,
 * and the claims of the daily reports being sent.
 *
 * Version 7 adds the suppression list (issue #22, queue/suppression): one row
 * per suppressed address, keyed by its lower-cased form, with the reply and
 * class that caused it and until when it holds.
 *
 * Version 8 makes each message's Message-ID a column the admin search reads
 * (issue #23): `header_message_id`, generated from `event_facts` (where the
 * Message-ID is kept since version 4), so it is stored once and every
 * message queued since version 4 has it at once, with no backfill.
 *
 * Version 9 (issue #24) adds each message's tenant and campaign as columns
 * `queue list`/`show` and the admin API read, generated from `event_facts`
 * (where intake has kept them since version 4) like the Message-ID; and the
 * idempotency keys of the injection API (queue/idempotency), one row per
 * token and key, written in the commit of the messages the key's request
 * queued. (Versions 8 and 9 were both written as 7 by the Halcyon that
 * added version 8: db.ts adds the Message-ID column to such a queue when it
 * lacks it.)
 *
 * Version 12 (issue #25) adds the warm-up of source addresses (queue/warmup):
 * each source's first day under a warm-up schedule, and its count of
 * recipients per UTC day and scope (a provider or a destination).
 *
 * Does not hold queries; those are in sqlite/messages, recipients and gate.ts.
 */

export const SCHEMA_VERSION = 12;

/** Run on every open, before anything else. */
export const PRAGMAS: readonly string[] = [
  'journal_mode = WAL',
  // FULL: the WAL is fsync'd at every commit, which is what makes a resolved enqueue durable.
  'synchronous = FULL',
  'foreign_keys = ON',
  'busy_timeout = 10000',
  // Statement journals (a multi-row UPDATE or a cascading DELETE inside the turn's transaction) and sorts in
  // memory, not in temporary files: nothing in them outlives the statement, and on disk they cost ~17
  // pwrite calls and a file created and removed per relayed message (strace, bench/syscalls).
  'temp_store = MEMORY',
];

export const SCHEMA_V1 = `
CREATE TABLE messages (
  id          TEXT PRIMARY KEY,
  sender      TEXT NOT NULL,
  params      TEXT NOT NULL,            -- JSON EnvelopeParams
  received_at INTEGER NOT NULL,
  size        INTEGER NOT NULL,
  trace       TEXT NOT NULL,            -- JSON Trace
  held        INTEGER NOT NULL DEFAULT 0,
  dsn_for     TEXT
) WITHOUT ROWID;

CREATE TABLE bodies (
  message_id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  data       BLOB NOT NULL
);

CREATE TABLE recipients (
  id              INTEGER PRIMARY KEY,
  message_id      TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  address         TEXT NOT NULL,
  domain          TEXT NOT NULL,        -- lower-cased domain of address, for filters
  orcpt           TEXT,
  notify          TEXT,                 -- JSON Notify
  destination     TEXT NOT NULL,
  state           TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_reply      TEXT,                 -- JSON LastReply
  lease_owner     TEXT,
  lease_until     INTEGER,
  delay_notified  INTEGER NOT NULL DEFAULT 0,
  dsn_done        INTEGER NOT NULL DEFAULT 0,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX messages_received ON messages(received_at);
-- Recipients waiting for an attempt, in due order (ties in insertion order): claims and the next wake-up
-- read this index in order and stop at the first rows they can use, however large the queue.
CREATE INDEX recipients_pending ON recipients(next_attempt_at) WHERE state IN ('queued', 'deferred');
CREATE INDEX recipients_inflight ON recipients(lease_until) WHERE state = 'inflight';
CREATE INDEX recipients_destination ON recipients(destination, state, next_attempt_at);
CREATE INDEX recipients_message ON recipients(message_id);
-- Reports still owed (failed/expired/delivered with dsn_done = 0): a small set, found without a scan.
CREATE INDEX recipients_reports ON recipients(message_id, id)
  WHERE dsn_done = 0 AND (state IN ('failed', 'expired') OR (state = 'delivered' AND notify LIKE '%SUCCESS%'));

CREATE TABLE attempts (
  recipient_id INTEGER NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
  at           INTEGER NOT NULL,
  state        TEXT NOT NULL,
  reply        TEXT                     -- JSON LastReply
);
CREATE INDEX attempts_recipient ON attempts(recipient_id);

CREATE TABLE destinations (
  key                  TEXT PRIMARY KEY,
  health               TEXT NOT NULL,
  backoff_until        INTEGER NOT NULL DEFAULT 0,
  backoff_ms           INTEGER NOT NULL DEFAULT 0,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_error           TEXT,
  updated_at           INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Applied after V1 (on a fresh file, or a version 1 queue being opened). */
export const SCHEMA_V2 = `
-- A report (DSN) or delay warning being written by a node: the claim that makes one node send it.
ALTER TABLE recipients ADD COLUMN report_owner TEXT;
ALTER TABLE recipients ADD COLUMN report_until INTEGER;
CREATE INDEX recipients_lease_owner ON recipients(lease_owner) WHERE state = 'inflight';

-- The compare-and-set token of health changes, and what the destination has learned (JSON, issue #11).
ALTER TABLE destinations ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE destinations ADD COLUMN limits TEXT;

-- Connection slots: one row per open connection (or probe), leased, so a dead node's slots come back.
CREATE TABLE destination_slots (
  id          INTEGER PRIMARY KEY,
  destination TEXT NOT NULL,
  node        TEXT NOT NULL,
  probe       INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL
);
CREATE INDEX destination_slots_destination ON destination_slots(destination);
CREATE INDEX destination_slots_node ON destination_slots(node);

-- A destination's shared rate (token bucket), when one is configured.
CREATE TABLE destination_tokens (
  destination TEXT PRIMARY KEY,
  tokens      REAL NOT NULL,
  at          INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Applied after V2: large bodies in spool segments (the row keeps where; `data` stays empty). */
export const SCHEMA_V3 = `
ALTER TABLE bodies ADD COLUMN segment TEXT;
ALTER TABLE bodies ADD COLUMN seg_offset INTEGER;
ALTER TABLE bodies ADD COLUMN seg_length INTEGER;
CREATE INDEX bodies_segment ON bodies(segment) WHERE segment IS NOT NULL;
`;

/** Applied after V3: the event outbox and the facts events carry (queue/event). */
export const SCHEMA_V4 = `
ALTER TABLE messages ADD COLUMN event_facts TEXT;  -- JSON EventFacts
-- AUTOINCREMENT: an id is never reused, so an acknowledgment that arrives late deletes only its own row.
CREATE TABLE event_outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  sink            TEXT NOT NULL,
  event_id        TEXT NOT NULL,
  type            TEXT NOT NULL,
  body            TEXT NOT NULL,        -- the event, JSON, as sent
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  lease_owner     TEXT,
  lease_until     INTEGER
);
CREATE INDEX event_outbox_due ON event_outbox(sink, next_attempt_at, id);
`;

/** Applied after V4: the recipient verification cache (queue/verify-cache). */
export const SCHEMA_V5 = `
CREATE TABLE verifications (
  address    TEXT PRIMARY KEY,
  verdict    TEXT NOT NULL,            -- 'exists' | 'absent'
  reply      TEXT NOT NULL,            -- JSON LastReply: the remote's reply to the probe's RCPT TO
  checked_at INTEGER NOT NULL,
  refresh_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX verifications_expiry ON verifications(expires_at);
`;

/** Applied after V5: TLS-RPT session counts and report claims (queue/tls-reports). */
export const SCHEMA_V6 = `
CREATE TABLE tls_sessions (
  day            TEXT NOT NULL,
  policy_domain  TEXT NOT NULL,
  policy_type    TEXT NOT NULL,
  result_type    TEXT NOT NULL,          -- '' for a successful session
  receiving_mx   TEXT NOT NULL,
  receiving_ip   TEXT NOT NULL,
  sessions       INTEGER NOT NULL,
  policy_strings TEXT NOT NULL,          -- JSON array, as last seen
  mx_hosts       TEXT NOT NULL,          -- JSON array, as last seen
  PRIMARY KEY (day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip)
) WITHOUT ROWID;
CREATE TABLE tls_report_claims (
  day             TEXT NOT NULL,
  policy_domain   TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  lease_owner     TEXT,
  lease_until     INTEGER,
  PRIMARY KEY (day, policy_domain)
) WITHOUT ROWID;
`;

/** Applied after V6: the suppression list (queue/suppression). */
export const SCHEMA_V7 = `
CREATE TABLE suppressions (
  key      TEXT PRIMARY KEY,            -- suppressionKey(address): lower-cased
  address  TEXT NOT NULL,
  class    TEXT NOT NULL,               -- BounceClass
  reply    TEXT NOT NULL,               -- JSON LastReply
  source   TEXT NOT NULL,               -- bounce | admin | import
  queue_id TEXT,
  since    INTEGER NOT NULL,
  until    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX suppressions_until ON suppressions(until);
`;

/**
 * Applied after V7: the Message-ID as a column of its own, for the admin search (`queue list --search`, the
 * dashboard): generated from event_facts (VIRTUAL: computed when read, nothing stored twice; SQLite cannot
 * add a STORED column to a table that has rows). Salvage copies event_facts, never this column.
 */
export const SCHEMA_V8 = `
ALTER TABLE messages ADD COLUMN header_message_id TEXT GENERATED ALWAYS AS (json_extract(event_facts, '$.message_id')) VIRTUAL;
`;

/** Applied after V8: tenant and campaign as columns (generated, as the Message-ID), and the idempotency keys (queue/idempotency). */
export const SCHEMA_V9 = `
ALTER TABLE messages ADD COLUMN tenant TEXT GENERATED ALWAYS AS (json_extract(event_facts, '$.tenant')) VIRTUAL;
ALTER TABLE messages ADD COLUMN campaign TEXT GENERATED ALWAYS AS (json_extract(event_facts, '$.campaign')) VIRTUAL;
CREATE TABLE idempotency_keys (
  token      TEXT NOT NULL,            -- the API token's name
  key        TEXT NOT NULL,            -- the Idempotency-Key header
  body_hash  TEXT NOT NULL,            -- SHA-256 hex of the request
  state      TEXT NOT NULL,            -- 'accepted' | 'rejected'
  status     INTEGER NOT NULL,         -- HTTP status of the first response
  response   TEXT NOT NULL,            -- its JSON body
  created_at INTEGER NOT NULL,
  PRIMARY KEY (token, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
`;

/**
 * Applied after V9 (10 was assigned to another change and is not used): each recipient's tenant (its message's,
 * '' for none), so the fair claim (queue/fair-claim) finds each destination's tenants and their first due rows in
 * an index, without reading a large backlog. Written at enqueue; rows already queued get theirs here.
 */
export const SCHEMA_V11 = `
ALTER TABLE recipients ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
UPDATE recipients SET tenant = COALESCE((SELECT m.tenant FROM messages m WHERE m.id = recipients.message_id), '')
  WHERE state NOT IN ('delivered', 'failed', 'expired');
CREATE INDEX recipients_fair ON recipients(destination, tenant, next_attempt_at, id) WHERE state IN ('queued', 'deferred');
`;

/** Applied after V11: source warm-up (queue/warmup): first day per source, recipients per (source, scope, UTC day). */
export const SCHEMA_V12 = `
CREATE TABLE source_warmup (
  source    TEXT PRIMARY KEY,
  first_day INTEGER NOT NULL              -- UTC days since 1970-01-01
) WITHOUT ROWID;
CREATE TABLE source_daily (
  source TEXT NOT NULL,
  scope  TEXT NOT NULL,                   -- provider:<name> or a destination key
  day    INTEGER NOT NULL,                -- UTC days since 1970-01-01
  sent   INTEGER NOT NULL,
  PRIMARY KEY (source, scope, day)
) WITHOUT ROWID;
`;

/** Columns computed from others: never written (salvage leaves them out of its copies). */
export const GENERATED_COLUMNS: Readonly<Record<string, readonly string[]>> = { messages: ['header_message_id', 'tenant', 'campaign'] };

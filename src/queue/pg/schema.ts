/**
 * queue/pg/schema — the PostgreSQL schema of the shared queue, as numbered
 * migrations applied in order under an advisory lock (so nodes starting
 * together do not race), recorded in `halcyon_schema_version`, one row per
 * version. A number may be left free (undefined) for a change that lands
 * later: each version this build has and the database lacks is applied, in
 * order, so a free number filled later is applied after higher ones. A
 * database migrated by a newer Halcyon (any version this build does not
 * have) is refused rather than guessed at.
 *
 * The columns mirror the SQLite schema (queue/sqlite/schema) so both share the
 * row converters of queue/rows: JSON as text, flags as smallint 0/1,
 * times as bigint epoch ms (parsed to numbers by queue/pg/db). Bodies are
 * bytea beside their rows: one commit covers a message, its recipients and
 * its body, and any node can deliver any message.
 */

export const PG_MIGRATIONS: readonly (string | undefined)[] = [
  // 1: everything of SQLite schema versions 1 and 2.
  `
  CREATE TABLE messages (
    id          text PRIMARY KEY,
    sender      text NOT NULL,
    params      text NOT NULL,
    received_at bigint NOT NULL,
    size        integer NOT NULL,
    trace       text NOT NULL,
    held        smallint NOT NULL DEFAULT 0,
    dsn_for     text
  );
  CREATE INDEX messages_received ON messages(received_at);
  CREATE TABLE bodies (
    message_id text PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    data       bytea NOT NULL
  );
  CREATE TABLE recipients (
    id              bigserial PRIMARY KEY,
    message_id      text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    address         text NOT NULL,
    domain          text NOT NULL,
    orcpt           text,
    notify          text,
    destination     text NOT NULL,
    state           text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    last_reply      text,
    lease_owner     text,
    lease_until     bigint,
    delay_notified  smallint NOT NULL DEFAULT 0,
    dsn_done        smallint NOT NULL DEFAULT 0,
    updated_at      bigint NOT NULL,
    report_owner    text,
    report_until    bigint
  );
  CREATE INDEX recipients_pending ON recipients(next_attempt_at, id) WHERE state IN ('queued', 'deferred');
  CREATE INDEX recipients_inflight ON recipients(lease_until) WHERE state = 'inflight';
  CREATE INDEX recipients_lease_owner ON recipients(lease_owner) WHERE state = 'inflight';
  CREATE INDEX recipients_destination ON recipients(destination, state, next_attempt_at);
  CREATE INDEX recipients_message ON recipients(message_id);
  CREATE INDEX recipients_reports ON recipients(message_id, id)
    WHERE dsn_done = 0 AND (state IN ('failed', 'expired') OR (state = 'delivered' AND notify LIKE '%SUCCESS%'));
  CREATE TABLE attempts (
    id           bigserial PRIMARY KEY,
    recipient_id bigint NOT NULL REFERENCES recipients(id) ON DELETE CASCADE,
    at           bigint NOT NULL,
    state        text NOT NULL,
    reply        text
  );
  CREATE INDEX attempts_recipient ON attempts(recipient_id);
  CREATE TABLE destinations (
    key                  text PRIMARY KEY,
    health               text NOT NULL,
    backoff_until        bigint NOT NULL DEFAULT 0,
    backoff_ms           bigint NOT NULL DEFAULT 0,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_error           text,
    updated_at           bigint NOT NULL,
    generation           bigint NOT NULL DEFAULT 0,
    limits               text
  );
  CREATE TABLE destination_slots (
    id          bigserial PRIMARY KEY,
    destination text NOT NULL,
    node        text NOT NULL,
    probe       smallint NOT NULL DEFAULT 0,
    lease_until bigint NOT NULL
  );
  CREATE INDEX destination_slots_destination ON destination_slots(destination);
  CREATE INDEX destination_slots_node ON destination_slots(node);
  CREATE TABLE destination_tokens (
    destination text PRIMARY KEY,
    tokens      double precision NOT NULL,
    at          bigint NOT NULL
  );
  `,
  // 2: the event outbox (queue/event-outbox) and the facts events carry, as SQLite schema version 4.
  `
  ALTER TABLE messages ADD COLUMN event_facts text;
  CREATE TABLE event_outbox (
    id              bigserial PRIMARY KEY,
    sink            text NOT NULL,
    event_id        text NOT NULL,
    type            text NOT NULL,
    body            text NOT NULL,
    created_at      bigint NOT NULL,
    next_attempt_at bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    lease_owner     text,
    lease_until     bigint
  );
  CREATE INDEX event_outbox_due ON event_outbox(sink, next_attempt_at, id);
  `,
  // 3: the recipient verification cache (queue/verify-cache), as SQLite schema version 5.
  `
  CREATE TABLE verifications (
    address    text PRIMARY KEY,
    verdict    text NOT NULL,
    reply      text NOT NULL,
    checked_at bigint NOT NULL,
    refresh_at bigint NOT NULL,
    expires_at bigint NOT NULL
  );
  CREATE INDEX verifications_expiry ON verifications(expires_at);
  `,
  // 4: TLS-RPT session counts and report claims (queue/tls-reports), as SQLite schema version 6.
  `
  CREATE TABLE tls_sessions (
    day            text NOT NULL,
    policy_domain  text NOT NULL,
    policy_type    text NOT NULL,
    result_type    text NOT NULL,
    receiving_mx   text NOT NULL,
    receiving_ip   text NOT NULL,
    sessions       bigint NOT NULL,
    policy_strings text NOT NULL,
    mx_hosts       text NOT NULL,
    PRIMARY KEY (day, policy_domain, policy_type, result_type, receiving_mx, receiving_ip)
  );
  CREATE TABLE tls_report_claims (
    day             text NOT NULL,
    policy_domain   text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL DEFAULT 0,
    lease_owner     text,
    lease_until     bigint,
    PRIMARY KEY (day, policy_domain)
  );
  `,
  // 5: the suppression list (queue/suppression), as SQLite schema version 7.
  `
  CREATE TABLE suppressions (
    key      text PRIMARY KEY,
    address  text NOT NULL,
    class    text NOT NULL,
    reply    text NOT NULL,
    source   text NOT NULL,
    queue_id text,
    since    bigint NOT NULL,
    until    bigint NOT NULL
  );
  CREATE INDEX suppressions_until ON suppressions(until);
  `,
  // 6: the Message-ID as a column for the admin search, generated from event_facts, as SQLite schema version 8.
  `
  ALTER TABLE messages ADD COLUMN header_message_id text GENERATED ALWAYS AS ((event_facts::jsonb) ->> 'message_id') STORED;
  `,
  // 7: tenant and campaign as columns (generated from event_facts), and the injection API's idempotency keys
  // (queue/idempotency), as SQLite schema version 9.
  `
  ALTER TABLE messages ADD COLUMN tenant text GENERATED ALWAYS AS ((event_facts::jsonb) ->> 'tenant') STORED;
  ALTER TABLE messages ADD COLUMN campaign text GENERATED ALWAYS AS ((event_facts::jsonb) ->> 'campaign') STORED;
  CREATE TABLE idempotency_keys (
    token      text NOT NULL,
    key        text NOT NULL,
    body_hash  text NOT NULL,
    state      text NOT NULL,
    status     integer NOT NULL,
    response   text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (token, key)
  );
  CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
  `,
  // 8: assigned to another change, not in this build (undefined): migratePg applies it when a build has it,
  // after 9 if 9 came first, and refuses a database that has it while this build does not.
  undefined,
  // 9: bodies compressed with lz4 instead of pglz, or not at all (issue 27). pglz spent 0.76–0.84 ms of the
  // server per 100 KiB body whether it compressed it or not; lz4 spends 0.09 ms on text (and keeps its WAL
  // small) and gives up as fast as no compression on data that does not compress (bench/toast). A server
  // without lz4 (built without it, or older than 14) stores bodies uncompressed instead (STORAGE EXTERNAL:
  // out of line, never compressed). Bodies already stored keep theirs; nothing is rewritten.
  `
  DO $$ BEGIN
    EXECUTE 'ALTER TABLE bodies ALTER COLUMN data SET COMPRESSION lz4';
  EXCEPTION WHEN OTHERS THEN
    EXECUTE 'ALTER TABLE bodies ALTER COLUMN data SET STORAGE EXTERNAL';
  END $$;
  `,
  // 10: each recipient's tenant (its message's, '' for none) and the index of the fair claim (queue/fair-claim),
  // as SQLite schema version 11. Written at enqueue; rows already queued get theirs here. Safe to run again.
  `
  ALTER TABLE recipients ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT '';
  UPDATE recipients r SET tenant = COALESCE(m.tenant, '') FROM messages m
    WHERE m.id = r.message_id AND r.state NOT IN ('delivered', 'failed', 'expired') AND m.tenant IS NOT NULL;
  CREATE INDEX IF NOT EXISTS recipients_fair ON recipients(destination, tenant, next_attempt_at, id) WHERE state IN ('queued', 'deferred');
  `,
  // 11: source warm-up (queue/warmup), as SQLite schema version 12: each source's first day under a warm-up
  // schedule and its recipients per (scope, UTC day). Safe to run again.
  `
  CREATE TABLE IF NOT EXISTS source_warmup (
    source    text PRIMARY KEY,
    first_day bigint NOT NULL
  );
  CREATE TABLE IF NOT EXISTS source_daily (
    source text NOT NULL,
    scope  text NOT NULL,
    day    bigint NOT NULL,
    sent   bigint NOT NULL,
    PRIMARY KEY (source, scope, day)
  );
  `,
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS.length;

/** The versions this build can apply (PG_MIGRATIONS' numbers that are not left free). */
export const PG_VERSIONS: readonly number[] = PG_MIGRATIONS.flatMap((m, i) => (m === undefined ? [] : [i + 1]));

/** The advisory lock key every node takes while migrating (any constant that nothing else uses). */
export const MIGRATION_LOCK = 0x48616c63; // "Halc"

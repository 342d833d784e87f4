//! The store's tables. Every table is prefixed `store_`: the embedded queue keeps its
//! own tables in the same SQLite file.
//!
//! Each item is kept whole as JSON in `body`; the other columns are copies of the
//! fields the store looks items up by, written in the same statement as the body.
//!
//! Lookups name their index (`INDEXED BY`): without statistics SQLite guesses every
//! equality matches ~10 rows and prefers scanning the tenant's primary key in `id`
//! order, which is a full scan of the tenant.

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS store_tenants (
    id   TEXT PRIMARY KEY,
    body TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS store_connections (
    tenant_id TEXT NOT NULL,
    id        TEXT NOT NULL,
    version   INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- Webhook routing: in each tenant, the connection that claimed a provider account.
CREATE TABLE IF NOT EXISTS store_account_routes (
    provider      TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    PRIMARY KEY (provider, account_id, tenant_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_account_routes_by_connection
    ON store_account_routes (tenant_id, connection_id);

CREATE TABLE IF NOT EXISTS store_customers (
    tenant_id       TEXT NOT NULL,
    id              TEXT NOT NULL,
    domain          TEXT,
    normalized_name TEXT,
    archived        INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    body            TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_customers_by_domain
    ON store_customers (tenant_id, domain, id);
CREATE INDEX IF NOT EXISTS store_customers_by_name
    ON store_customers (tenant_id, normalized_name, id);
CREATE INDEX IF NOT EXISTS store_customers_by_archived
    ON store_customers (tenant_id, archived, id);

CREATE TABLE IF NOT EXISTS store_contacts (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    customer_id TEXT,
    version     INTEGER NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_contacts_by_customer
    ON store_contacts (tenant_id, customer_id, id);

-- Keyed by the provider account, not the connection: ids repeat across accounts, and a
-- reconnect through a new connection must find its links.
CREATE TABLE IF NOT EXISTS store_source_links (
    tenant_id     TEXT NOT NULL,
    provider      TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    object_kind   TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    target_type   TEXT NOT NULL,
    target_id     TEXT NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, provider, account_id, object_kind, source_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_source_links_by_target
    ON store_source_links (tenant_id, target_type, target_id, provider, account_id, object_kind, source_id);

CREATE TABLE IF NOT EXISTS store_pending_matches (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    provider    TEXT NOT NULL,
    object_kind TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    status      TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
-- At most one open match per source record.
CREATE UNIQUE INDEX IF NOT EXISTS store_pending_matches_one_open
    ON store_pending_matches (tenant_id, provider, object_kind, source_id)
    WHERE status = 'open';
CREATE INDEX IF NOT EXISTS store_pending_matches_by_source
    ON store_pending_matches (tenant_id, provider, object_kind, source_id, id);
CREATE INDEX IF NOT EXISTS store_pending_matches_by_status
    ON store_pending_matches (tenant_id, status, id);

CREATE TABLE IF NOT EXISTS store_log (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    at            INTEGER NOT NULL,
    is_error      INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_log_newest
    ON store_log (tenant_id, connection_id, at, id);
CREATE INDEX IF NOT EXISTS store_log_by_expiry
    ON store_log (expires_at);

CREATE TABLE IF NOT EXISTS store_events (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_events_by_expiry
    ON store_events (expires_at);

-- One full pass per connection at a time: the run holding the lease, until it expires.
CREATE TABLE IF NOT EXISTS store_pass_leases (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, connection_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS store_oauth_states (
    state      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    body       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_oauth_states_by_expiry
    ON store_oauth_states (expires_at);

CREATE TABLE IF NOT EXISTS store_sync_runs (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    id            TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_sync_runs_newest
    ON store_sync_runs (tenant_id, connection_id, started_at, id);

-- Companies a run archives once the guard allows, beside the run rather than in it.
CREATE TABLE IF NOT EXISTS store_pending_archives (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, run_id, source_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_pending_archives_by_expiry
    ON store_pending_archives (expires_at);

-- What a run's listing saw, in chunks of hashed ids, so its check phase re-reads only the rest.
CREATE TABLE IF NOT EXISTS store_listed_ids (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    chunk         INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, run_id, kind, chunk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_listed_ids_by_expiry
    ON store_listed_ids (expires_at);

-- The admins' notifications; a closed one expires, an open one has no expiry (NULL).
CREATE TABLE IF NOT EXISTS store_notifications (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    kind          TEXT NOT NULL,
    incident      INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    expires_at    INTEGER,
    body          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, kind, incident)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_notifications_by_expiry
    ON store_notifications (expires_at);

-- Two-way sync's conflict audit, kept 30 days.
CREATE TABLE IF NOT EXISTS store_conflicts (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    at            INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_conflicts_newest
    ON store_conflicts (tenant_id, connection_id, at, id);
CREATE INDEX IF NOT EXISTS store_conflicts_by_expiry
    ON store_conflicts (expires_at);
";

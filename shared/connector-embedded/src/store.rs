//! The state store in one SQLite file: [`EmbeddedStore`].
//!
//! One connection behind a mutex, used from `spawn_blocking` so SQLite never blocks the
//! async executor. Writes that check something (versions, source links, open matches)
//! run in an `IMMEDIATE` transaction, so the check and the write see the same data even
//! when another process has the file open.

mod codec;
mod conflicts;
mod directory;
mod ephemeral;
mod log;
mod matches;
mod notifications;
mod records;
mod runs;
mod schema;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use connector::model::*;
use connector::ports::*;
use rusqlite::Connection as Db;

use codec::SqlResult;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded state store. Cloning is cheap: clones share one connection.
#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Db>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

/// A thread panicked while holding the connection; the store refuses further work.
#[derive(Debug, thiserror::Error)]
#[error("the store's connection lock is poisoned by an earlier panic")]
struct PoisonedConnection;

impl EmbeddedStore {
    /// Opens (or creates) the SQLite file at `path` in WAL mode and creates the store's
    /// tables if they are missing.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<EmbeddedStore> {
        let conn = Db::open(path).db()?;
        conn.busy_timeout(BUSY_TIMEOUT).db()?;
        // WAL lets readers run beside the one writer; NORMAL sync is durable in WAL mode
        // except for the last commits on power loss, which is fine for local runs.
        conn.pragma_update(None, "journal_mode", "WAL").db()?;
        conn.pragma_update(None, "synchronous", "NORMAL").db()?;
        conn.execute_batch(schema::SCHEMA).db()?;
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Rows inserted, updated or deleted through this store since it was opened (SQLite's
    /// `total_changes`), for benchmarks that count store writes.
    pub async fn rows_written(&self) -> StoreResult<u64> {
        self.run(|c| Ok(c.total_changes())).await
    }

    /// Runs `work` on the connection on a blocking thread.
    async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> StoreResult<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::backend(PoisonedConnection))?;
            work(&mut guard)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn put_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let tenant = tenant.clone();
        self.run(move |c| directory::put_tenant(c, &tenant)).await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let id = id.clone();
        self.run(move |c| directory::get_tenant(c, &id)).await
    }

    async fn get_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> StoreResult<Option<Connection>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| directory::get_connection(c, &tenant, &id))
            .await
    }

    async fn put_connection(&self, connection: &Connection) -> StoreResult<Connection> {
        let connection = connection.clone();
        self.run(move |c| directory::put_connection(c, connection))
            .await
    }

    async fn list_connections(&self, tenant: &TenantId) -> StoreResult<Vec<Connection>> {
        let tenant = tenant.clone();
        self.run(move |c| directory::list_connections(c, &tenant))
            .await
    }

    async fn find_connections_by_account(
        &self,
        provider: Provider,
        account: &ProviderAccountId,
    ) -> StoreResult<Vec<Connection>> {
        let account = account.clone();
        self.run(move |c| directory::find_connections_by_account(c, provider, &account))
            .await
    }

    async fn list_all_connections(&self, page: PageRequest) -> StoreResult<Page<Connection>> {
        self.run(move |c| directory::list_all_connections(c, &page))
            .await
    }

    async fn get_customer(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<Option<Customer>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| records::get_customer(c, &tenant, &id))
            .await
    }

    async fn write_customer(&self, write: CustomerWrite<'_>) -> StoreResult<Customer> {
        let customer = write.customer.clone();
        let expected = write.expected_version;
        let link = write.link.cloned();
        self.run(move |c| records::write_customer(c, customer, expected, link.as_ref()))
            .await
    }

    async fn find_customers_by_domain(
        &self,
        tenant: &TenantId,
        domain: &Domain,
    ) -> StoreResult<Vec<Customer>> {
        let (tenant, domain) = (tenant.clone(), domain.clone());
        self.run(move |c| records::find_customers_by_domain(c, &tenant, &domain))
            .await
    }

    async fn find_customers_by_name(
        &self,
        tenant: &TenantId,
        name: &NormalizedName,
    ) -> StoreResult<Vec<Customer>> {
        let (tenant, name) = (tenant.clone(), name.clone());
        self.run(move |c| records::find_customers_by_name(c, &tenant, &name))
            .await
    }

    async fn list_customers(
        &self,
        tenant: &TenantId,
        filter: ArchivedFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Customer>> {
        let tenant = tenant.clone();
        self.run(move |c| records::list_customers(c, &tenant, filter, &page))
            .await
    }

    async fn delete_customer_permanently(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| records::delete_customer_permanently(c, &tenant, &id))
            .await
    }

    async fn get_contact(&self, tenant: &TenantId, id: &ContactId) -> StoreResult<Option<Contact>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| records::get_contact(c, &tenant, &id))
            .await
    }

    async fn write_contact(&self, write: ContactWrite<'_>) -> StoreResult<Contact> {
        let contact = write.contact.clone();
        let expected = write.expected_version;
        let link = write.link.cloned();
        self.run(move |c| records::write_contact(c, contact, expected, link.as_ref()))
            .await
    }

    async fn list_contacts_of_customer(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<Contact>> {
        let (tenant, customer) = (tenant.clone(), customer.clone());
        self.run(move |c| records::list_contacts_of_customer(c, &tenant, &customer, &page))
            .await
    }

    async fn get_link(
        &self,
        tenant: &TenantId,
        source: &SourceRef,
    ) -> StoreResult<Option<SourceLink>> {
        let (tenant, source) = (tenant.clone(), source.clone());
        self.run(move |c| records::get_link(c, &tenant, &source))
            .await
    }

    async fn put_link(&self, link: &SourceLink) -> StoreResult<()> {
        let link = link.clone();
        self.run(move |c| records::put_link(c, &link)).await
    }

    async fn delete_link(&self, tenant: &TenantId, source: &SourceRef) -> StoreResult<()> {
        let (tenant, source) = (tenant.clone(), source.clone());
        self.run(move |c| records::delete_link(c, &tenant, &source))
            .await
    }

    async fn list_links(
        &self,
        tenant: &TenantId,
        provider: Provider,
        account: &ProviderAccountId,
        kind: ObjectKind,
        page: PageRequest,
    ) -> StoreResult<Page<SourceLink>> {
        let (tenant, account) = (tenant.clone(), account.clone());
        self.run(move |c| records::list_links(c, &tenant, provider, &account, kind, &page))
            .await
    }

    async fn links_to(
        &self,
        tenant: &TenantId,
        target: &LinkTarget,
    ) -> StoreResult<Vec<SourceLink>> {
        let (tenant, target) = (tenant.clone(), target.clone());
        self.run(move |c| records::links_to(c, &tenant, &target))
            .await
    }

    async fn create_pending_match(&self, m: &PendingMatch) -> StoreResult<()> {
        let m = m.clone();
        self.run(move |c| matches::create(c, &m)).await
    }

    async fn get_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
    ) -> StoreResult<Option<PendingMatch>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| matches::get(c, &tenant, &id)).await
    }

    async fn find_pending_match_for_source(
        &self,
        tenant: &TenantId,
        provider: Provider,
        kind: ObjectKind,
        source_id: &SourceId,
    ) -> StoreResult<Option<PendingMatch>> {
        let (tenant, source_id) = (tenant.clone(), source_id.clone());
        self.run(move |c| matches::find_for_source(c, &tenant, provider, kind, &source_id))
            .await
    }

    async fn list_pending_matches(
        &self,
        tenant: &TenantId,
        status: PendingMatchStatus,
        page: PageRequest,
    ) -> StoreResult<Page<PendingMatch>> {
        let tenant = tenant.clone();
        self.run(move |c| matches::list(c, &tenant, status, &page))
            .await
    }

    async fn resolve_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
        resolution: MatchResolution,
        at: Timestamp,
    ) -> StoreResult<PendingMatch> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| matches::resolve(c, &tenant, &id, resolution, at))
            .await
    }

    async fn append_log(&self, entry: &LogEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.run(move |c| log::append(c, &entry)).await
    }

    async fn list_log(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        filter: LogFilter,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<LogEntry>> {
        let (tenant, connection) = (tenant.clone(), connection.clone());
        self.run(move |c| log::list(c, &tenant, &connection, filter, &page, now))
            .await
    }

    async fn get_log_entry(
        &self,
        tenant: &TenantId,
        id: &LogEntryId,
        now: Timestamp,
    ) -> StoreResult<Option<LogEntry>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| log::get(c, &tenant, &id, now)).await
    }

    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.run(move |c| ephemeral::purge_expired(c, now)).await
    }

    async fn record_event_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let key = key.to_owned();
        self.run(move |c| ephemeral::record_event_once(c, &key, expires_at, now))
            .await
    }

    async fn events_recorded(
        &self,
        keys: &[String],
        now: Timestamp,
    ) -> StoreResult<std::collections::BTreeSet<String>> {
        let keys = keys.to_vec();
        self.run(move |c| ephemeral::events_recorded(c, &keys, now))
            .await
    }

    async fn record_events(&self, keys: &[String], expires_at: Timestamp) -> StoreResult<()> {
        let keys = keys.to_vec();
        self.run(move |c| ephemeral::record_events(c, &keys, expires_at))
            .await
    }

    async fn claim_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<SyncRunId> {
        let (tenant, connection, run) = (tenant.clone(), connection.clone(), run.clone());
        self.run(move |c| ephemeral::claim_pass(c, &tenant, &connection, &run, expires_at, now))
            .await
    }

    async fn release_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
    ) -> StoreResult<()> {
        let (tenant, connection, run) = (tenant.clone(), connection.clone(), run.clone());
        self.run(move |c| ephemeral::release_pass(c, &tenant, &connection, &run))
            .await
    }

    async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        let state = state.clone();
        self.run(move |c| ephemeral::put_oauth_state(c, &state))
            .await
    }

    async fn take_oauth_state(
        &self,
        state: &str,
        now: Timestamp,
    ) -> StoreResult<Option<OAuthState>> {
        let state = state.to_owned();
        self.run(move |c| ephemeral::take_oauth_state(c, &state, now))
            .await
    }

    async fn get_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
    ) -> StoreResult<Option<SyncRun>> {
        let (tenant, connection, id) = (tenant.clone(), connection.clone(), id.clone());
        self.run(move |c| runs::get(c, &tenant, &connection, &id))
            .await
    }

    async fn put_sync_run(&self, run: &SyncRun) -> StoreResult<SyncRun> {
        let run = run.clone();
        self.run(move |c| runs::put(c, run)).await
    }

    async fn add_sync_counters(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
        delta: &SyncCounters,
    ) -> StoreResult<()> {
        let (tenant, connection, id, delta) =
            (tenant.clone(), connection.clone(), id.clone(), *delta);
        self.run(move |c| runs::add_counters(c, &tenant, &connection, &id, &delta))
            .await
    }

    async fn list_sync_runs(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
    ) -> StoreResult<Page<SyncRun>> {
        let (tenant, connection) = (tenant.clone(), connection.clone());
        self.run(move |c| runs::list(c, &tenant, &connection, &page))
            .await
    }

    async fn put_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        archives: &[PendingArchive],
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let (tenant, connection, run) = (tenant.clone(), connection.clone(), run.clone());
        let archives = archives.to_vec();
        self.run(move |c| {
            runs::put_pending_archives(c, &tenant, &connection, &run, &archives, expires_at)
        })
        .await
    }

    async fn list_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<PendingArchive>> {
        let (tenant, connection, run) = (tenant.clone(), connection.clone(), run.clone());
        self.run(move |c| runs::list_pending_archives(c, &tenant, &connection, &run, &page, now))
            .await
    }

    async fn put_listed_ids(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        kind: ObjectKind,
        chunk: u32,
        ids: &ListedIds,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let (tenant, connection, run) = (tenant.clone(), connection.clone(), run.clone());
        let ids = ids.clone();
        self.run(move |c| {
            runs::put_listed_ids(c, &tenant, &connection, &run, kind, chunk, &ids, expires_at)
        })
        .await
    }

    async fn listed_ids(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        kind: ObjectKind,
        now: Timestamp,
    ) -> StoreResult<Vec<ListedIds>> {
        let (tenant, connection, run) = (tenant.clone(), connection.clone(), run.clone());
        self.run(move |c| runs::listed_ids(c, &tenant, &connection, &run, kind, now))
            .await
    }

    async fn put_notification(
        &self,
        notification: &Notification,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Notification> {
        let notification = notification.clone();
        self.run(move |c| notifications::put(c, notification, expires_at, now))
            .await
    }

    async fn list_notifications(
        &self,
        tenant: &TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<Notification>> {
        let tenant = tenant.clone();
        self.run(move |c| notifications::list(c, &tenant, now))
            .await
    }

    async fn put_conflict(&self, conflict: &Conflict, now: Timestamp) -> StoreResult<Conflict> {
        let conflict = conflict.clone();
        self.run(move |c| conflicts::put(c, conflict, now)).await
    }

    async fn list_conflicts(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<Conflict>> {
        let (tenant, connection) = (tenant.clone(), connection.clone());
        self.run(move |c| conflicts::list(c, &tenant, &connection, &page, now))
            .await
    }

    async fn get_conflict(
        &self,
        tenant: &TenantId,
        id: &ConflictId,
        now: Timestamp,
    ) -> StoreResult<Option<Conflict>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.run(move |c| conflicts::get(c, &tenant, &id, now))
            .await
    }
}

#[cfg(test)]
mod tests;

//! The state store on one DynamoDB table (see this crate's README.md for the key design).
//!
//! Every domain value is stored whole as JSON in `body`; next to it sit only the
//! attributes that keys, indexes, conditions and TTL need. Listings are `Query`s over
//! (sharded) index partitions, never `Scan`s.

mod conflicts;
mod cursor;
mod expiring;
mod item;
mod keys;
mod matches;
mod notifications;
mod query;
mod records;
mod runs;
mod table;
mod tenants;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use connector::ports::{
    ArchivedFilter, ContactWrite, CustomerWrite, LogFilter, OAuthState, Page, PageRequest, Store,
    StoreResult,
};
use connector::*;
use serde::de::DeserializeOwned;

use item::Item;
use keys::Key;

pub use keys::SHARDS;
pub use table::{TTL_ATTRIBUTE, table_definition};

/// The DynamoDB adapter of [`Store`]. Cheap to clone: clones share the SDK client.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
}

impl DynamoStore {
    /// A store over an existing table (see [`DynamoStore::create_table`]). Timeouts and
    /// retries are the `SdkConfig`'s the client was built from.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: Arc::from(table.into()),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates `table` with its key schema, GSIs and TTL, on-demand billing, and waits
    /// until it is active. For tests and the local tools; deployments use template.yaml.
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        table::create(client, table).await
    }

    /// A strongly consistent GetItem.
    async fn get_item(&self, key: &Key) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(item::key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(item::backend)?;
        Ok(out.item)
    }

    async fn get_body<T: DeserializeOwned>(&self, key: &Key) -> StoreResult<Option<T>> {
        match self.get_item(key).await? {
            Some(found) => item::body(&found).map(Some),
            None => Ok(None),
        }
    }

    async fn delete_item(&self, key: &Key) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(self.table())
            .set_key(Some(item::key_map(key)))
            .send()
            .await
            .map_err(item::backend)?;
        Ok(())
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn put_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        tenants::put_tenant(self, tenant).await
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.get_body(&keys::tenant(id)).await
    }

    async fn get_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> StoreResult<Option<Connection>> {
        self.get_body(&keys::connection(tenant, id)).await
    }

    async fn put_connection(&self, connection: &Connection) -> StoreResult<Connection> {
        tenants::put_connection(self, connection).await
    }

    async fn list_connections(&self, tenant: &TenantId) -> StoreResult<Vec<Connection>> {
        tenants::list_connections(self, tenant).await
    }

    async fn find_connections_by_account(
        &self,
        provider: Provider,
        account: &ProviderAccountId,
    ) -> StoreResult<Vec<Connection>> {
        tenants::find_connections_by_account(self, provider, account).await
    }

    async fn list_all_connections(&self, page: PageRequest) -> StoreResult<Page<Connection>> {
        tenants::list_all_connections(self, page).await
    }

    async fn get_customer(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<Option<Customer>> {
        self.get_body(&keys::customer(tenant, id)).await
    }

    async fn write_customer(&self, write: CustomerWrite<'_>) -> StoreResult<Customer> {
        records::write_customer(self, write).await
    }

    async fn find_customers_by_domain(
        &self,
        tenant: &TenantId,
        domain: &Domain,
    ) -> StoreResult<Vec<Customer>> {
        records::find_customers(self, keys::GSI2, keys::customers_by_domain(tenant, domain)).await
    }

    async fn find_customers_by_name(
        &self,
        tenant: &TenantId,
        name: &NormalizedName,
    ) -> StoreResult<Vec<Customer>> {
        records::find_customers(self, keys::GSI3, keys::customers_by_name(tenant, name)).await
    }

    async fn list_customers(
        &self,
        tenant: &TenantId,
        filter: ArchivedFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Customer>> {
        records::list_customers(self, tenant, filter, page).await
    }

    async fn delete_customer_permanently(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<()> {
        records::delete_customer_permanently(self, tenant, id).await
    }

    async fn get_contact(&self, tenant: &TenantId, id: &ContactId) -> StoreResult<Option<Contact>> {
        self.get_body(&keys::contact(tenant, id)).await
    }

    async fn write_contact(&self, write: ContactWrite<'_>) -> StoreResult<Contact> {
        records::write_contact(self, write).await
    }

    async fn list_contacts_of_customer(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<Contact>> {
        records::list_contacts_of_customer(self, tenant, customer, page).await
    }

    async fn get_link(
        &self,
        tenant: &TenantId,
        source: &SourceRef,
    ) -> StoreResult<Option<SourceLink>> {
        self.get_body(&keys::link(tenant, source)).await
    }

    async fn put_link(&self, link: &SourceLink) -> StoreResult<()> {
        records::put_link(self, link).await
    }

    async fn delete_link(&self, tenant: &TenantId, source: &SourceRef) -> StoreResult<()> {
        self.delete_item(&keys::link(tenant, source)).await
    }

    async fn list_links(
        &self,
        tenant: &TenantId,
        provider: Provider,
        account: &ProviderAccountId,
        kind: ObjectKind,
        page: PageRequest,
    ) -> StoreResult<Page<SourceLink>> {
        records::list_links(self, tenant, provider, account, kind, page).await
    }

    async fn links_to(
        &self,
        tenant: &TenantId,
        target: &LinkTarget,
    ) -> StoreResult<Vec<SourceLink>> {
        records::links_to(self, tenant, target).await
    }

    async fn create_pending_match(&self, m: &PendingMatch) -> StoreResult<()> {
        matches::create(self, m).await
    }

    async fn get_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
    ) -> StoreResult<Option<PendingMatch>> {
        self.get_body(&keys::pending_match(tenant, id)).await
    }

    async fn find_pending_match_for_source(
        &self,
        tenant: &TenantId,
        provider: Provider,
        kind: ObjectKind,
        source_id: &SourceId,
    ) -> StoreResult<Option<PendingMatch>> {
        matches::find_for_source(self, tenant, provider, kind, source_id).await
    }

    async fn list_pending_matches(
        &self,
        tenant: &TenantId,
        status: PendingMatchStatus,
        page: PageRequest,
    ) -> StoreResult<Page<PendingMatch>> {
        matches::list(self, tenant, status, page).await
    }

    async fn resolve_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
        resolution: MatchResolution,
        at: Timestamp,
    ) -> StoreResult<PendingMatch> {
        matches::resolve(self, tenant, id, resolution, at).await
    }

    async fn append_log(&self, entry: &LogEntry) -> StoreResult<()> {
        expiring::append_log(self, entry).await
    }

    async fn list_log(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        filter: LogFilter,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<LogEntry>> {
        expiring::list_log(self, tenant, connection, filter, page, now).await
    }

    async fn get_log_entry(
        &self,
        tenant: &TenantId,
        id: &LogEntryId,
        now: Timestamp,
    ) -> StoreResult<Option<LogEntry>> {
        expiring::get_log_entry(self, tenant, id, now).await
    }

    /// DynamoDB's TTL deletes expired items (within days); every read already skips them.
    async fn purge_expired(&self, _now: Timestamp) -> StoreResult<u64> {
        Ok(0)
    }

    async fn record_event_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        expiring::record_event_once(self, key, expires_at, now).await
    }

    async fn events_recorded(
        &self,
        keys: &[String],
        now: Timestamp,
    ) -> StoreResult<std::collections::BTreeSet<String>> {
        expiring::events_recorded(self, keys, now).await
    }

    async fn record_events(&self, keys: &[String], expires_at: Timestamp) -> StoreResult<()> {
        expiring::record_events(self, keys, expires_at).await
    }

    async fn claim_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<SyncRunId> {
        expiring::claim_pass(self, tenant, connection, run, expires_at, now).await
    }

    async fn release_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
    ) -> StoreResult<()> {
        expiring::release_pass(self, tenant, connection, run).await
    }

    async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        expiring::put_oauth_state(self, state).await
    }

    async fn take_oauth_state(
        &self,
        state: &str,
        now: Timestamp,
    ) -> StoreResult<Option<OAuthState>> {
        expiring::take_oauth_state(self, state, now).await
    }

    async fn get_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
    ) -> StoreResult<Option<SyncRun>> {
        runs::get(self, tenant, connection, id).await
    }

    async fn put_sync_run(&self, run: &SyncRun) -> StoreResult<SyncRun> {
        runs::put(self, run).await
    }

    async fn add_sync_counters(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
        delta: &SyncCounters,
    ) -> StoreResult<()> {
        runs::add_counters(self, tenant, connection, id, delta).await
    }

    async fn list_sync_runs(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
    ) -> StoreResult<Page<SyncRun>> {
        runs::list(self, tenant, connection, page).await
    }

    async fn put_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        archives: &[PendingArchive],
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        runs::put_pending_archives(self, tenant, connection, run, archives, expires_at).await
    }

    async fn list_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<PendingArchive>> {
        runs::list_pending_archives(self, tenant, connection, run, page, now).await
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
        runs::put_listed_ids(self, tenant, connection, run, kind, chunk, ids, expires_at).await
    }

    async fn listed_ids(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        kind: ObjectKind,
        now: Timestamp,
    ) -> StoreResult<Vec<ListedIds>> {
        runs::listed_ids(self, tenant, connection, run, kind, now).await
    }

    async fn put_notification(
        &self,
        notification: &Notification,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Notification> {
        notifications::put(self, notification, expires_at, now).await
    }

    async fn list_notifications(
        &self,
        tenant: &TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<Notification>> {
        notifications::list(self, tenant, now).await
    }

    async fn put_conflict(&self, conflict: &Conflict, now: Timestamp) -> StoreResult<Conflict> {
        conflicts::put(self, conflict, now).await
    }

    async fn list_conflicts(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<Conflict>> {
        conflicts::list(self, tenant, connection, page, now).await
    }

    async fn get_conflict(
        &self,
        tenant: &TenantId,
        id: &ConflictId,
        now: Timestamp,
    ) -> StoreResult<Option<Conflict>> {
        conflicts::get(self, tenant, id, now).await
    }
}

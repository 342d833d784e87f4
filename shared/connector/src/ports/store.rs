use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::*;

/// Failures of the state store, named so the engine can act on them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// An optimistic-concurrency check failed: someone else wrote first. Re-read and retry.
    #[error("{entity} was changed by another writer (expected version {expected})")]
    VersionConflict { entity: &'static str, expected: u64 },
    /// The write carried a source version older than (or equal to, with the same
    /// content) what is stored: nothing was written.
    #[error("source version {offered:?} is not newer than the stored {stored:?}")]
    StaleSource {
        offered: SourceVersion,
        stored: SourceVersion,
    },
    #[error("{entity} already exists")]
    AlreadyExists { entity: &'static str },
    /// Only archived customers can be deleted permanently.
    #[error("customer is not archived")]
    NotArchived,
    #[error("pending match is already resolved")]
    AlreadyResolved,
    /// Stored data that no longer parses: a bug or a hand edit, never user input.
    /// A page cursor this listing did not hand out (garbage, or another listing's).
    #[error("the page cursor is not one this listing returned")]
    BadCursor,
    #[error("corrupt stored item: {0}")]
    Corrupt(String),
    /// The backend failed (network, throttling, disk). Transient unless proven otherwise.
    #[error("store backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One page of a listing. `next` is opaque to callers: pass it back to get the next page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Which page of a listing to read. `limit` is capped by the adapters at [`MAX_PAGE_SIZE`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

pub const MAX_PAGE_SIZE: usize = 1000;

impl PageRequest {
    pub fn first(limit: usize) -> Self {
        Self {
            limit,
            cursor: None,
        }
    }

    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE_SIZE)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArchivedFilter {
    #[default]
    Active,
    Archived,
    All,
}

impl ArchivedFilter {
    pub fn admits(self, archived: bool) -> bool {
        match self {
            ArchivedFilter::Active => !archived,
            ArchivedFilter::Archived => archived,
            ArchivedFilter::All => true,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only rows with an error code or status `failed`.
    pub errors_only: bool,
}

/// A customer write together with the source link that caused it, applied atomically.
/// The write happens only if
/// - the customer's stored version equals `expected_version` (0: must not exist yet), and
/// - there is no stored link for `(tenant, provider, object_kind, source_id)`, or the stored
///   link is superseded by the new one ([`SourceLink::is_superseded_by`]).
///
/// Otherwise nothing is written and the error says which check failed.
#[derive(Clone, Debug)]
pub struct CustomerWrite<'a> {
    pub customer: &'a Customer,
    pub expected_version: u64,
    pub link: Option<&'a SourceLink>,
}

/// The same for contacts.
#[derive(Clone, Debug)]
pub struct ContactWrite<'a> {
    pub contact: &'a Contact,
    pub expected_version: u64,
    pub link: Option<&'a SourceLink>,
}

/// Short-lived OAuth `state`: single use, 10 minutes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthState {
    /// The random `state` value sent to the provider (unguessable, URL-safe).
    pub state: String,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub provider: Provider,
    /// PKCE verifier or other per-flow data, if the provider uses it.
    #[serde(serialize_with = "Secret::serialize_exposed_option")]
    pub code_verifier: Option<Secret>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

pub const OAUTH_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// The state store. Every read of an item with an expiry (log rows, dedupe keys, OAuth
/// state) treats it as absent once `expires_at <= now`, whether or not the backend has
/// deleted it yet. Every call names its tenant: no call reads across tenants, except the
/// two that route provider traffic to tenants (`find_connections_by_account`) and fan out
/// the nightly run (`list_all_connections`).
#[async_trait]
pub trait Store: Send + Sync {
    // ---- tenants
    async fn put_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;

    // ---- connections
    async fn get_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> StoreResult<Option<Connection>>;
    /// Writes `connection` if the stored version equals `connection.version` (0: must not
    /// exist) and returns it with the bumped version. Also maintains the
    /// `(provider, account, tenant)` routing entry: a connection that is not Disconnected
    /// claims its account in its tenant; other tenants' routes are never touched.
    async fn put_connection(&self, connection: &Connection) -> StoreResult<Connection>;
    async fn list_connections(&self, tenant: &TenantId) -> StoreResult<Vec<Connection>>;
    /// Webhook routing: in every tenant that has one, the connection that last claimed the
    /// account and is not Disconnected (at most one per tenant).
    async fn find_connections_by_account(
        &self,
        provider: Provider,
        account: &ProviderAccountId,
    ) -> StoreResult<Vec<Connection>>;
    /// Every connection of every tenant, paged (the nightly fan-out).
    async fn list_all_connections(&self, page: PageRequest) -> StoreResult<Page<Connection>>;

    // ---- customers
    async fn get_customer(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<Option<Customer>>;
    /// See [`CustomerWrite`]. Returns the customer as stored, with its bumped version.
    async fn write_customer(&self, write: CustomerWrite<'_>) -> StoreResult<Customer>;
    /// Customers (archived or not) whose normalised domain equals `domain`.
    async fn find_customers_by_domain(
        &self,
        tenant: &TenantId,
        domain: &Domain,
    ) -> StoreResult<Vec<Customer>>;
    /// Customers (archived or not) whose normalised name equals `name`.
    async fn find_customers_by_name(
        &self,
        tenant: &TenantId,
        name: &NormalizedName,
    ) -> StoreResult<Vec<Customer>>;
    async fn list_customers(
        &self,
        tenant: &TenantId,
        filter: ArchivedFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Customer>>;
    /// Purges an archived customer with its source links and contacts.
    /// `NotFound` if absent, `NotArchived` if it is not archived.
    async fn delete_customer_permanently(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<()>;

    // ---- contacts
    async fn get_contact(&self, tenant: &TenantId, id: &ContactId) -> StoreResult<Option<Contact>>;
    async fn write_contact(&self, write: ContactWrite<'_>) -> StoreResult<Contact>;
    async fn list_contacts_of_customer(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<Contact>>;

    // ---- source links
    async fn get_link(
        &self,
        tenant: &TenantId,
        source: &SourceRef,
    ) -> StoreResult<Option<SourceLink>>;
    /// Writes a link on its own (merge re-pointing, marking the source gone), unconditionally.
    async fn put_link(&self, link: &SourceLink) -> StoreResult<()>;
    async fn delete_link(&self, tenant: &TenantId, source: &SourceRef) -> StoreResult<()>;
    /// All links of one provider account and object kind in a tenant, paged (the
    /// reconciler's diff), whichever connection wrote them.
    async fn list_links(
        &self,
        tenant: &TenantId,
        provider: Provider,
        account: &ProviderAccountId,
        kind: ObjectKind,
        page: PageRequest,
    ) -> StoreResult<Page<SourceLink>>;
    /// The links that point at one customer or contact.
    async fn links_to(
        &self,
        tenant: &TenantId,
        target: &LinkTarget,
    ) -> StoreResult<Vec<SourceLink>>;

    // ---- pending matches
    /// Creates an open match. At most one open match exists per source record: creating a
    /// second returns `AlreadyExists` and leaves the first as it was.
    async fn create_pending_match(&self, m: &PendingMatch) -> StoreResult<()>;
    async fn get_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
    ) -> StoreResult<Option<PendingMatch>>;
    /// The match raised for one source record (open or resolved): how the engine finds
    /// the admin's earlier choice.
    async fn find_pending_match_for_source(
        &self,
        tenant: &TenantId,
        provider: Provider,
        kind: ObjectKind,
        source_id: &SourceId,
    ) -> StoreResult<Option<PendingMatch>>;
    async fn list_pending_matches(
        &self,
        tenant: &TenantId,
        status: PendingMatchStatus,
        page: PageRequest,
    ) -> StoreResult<Page<PendingMatch>>;
    /// Resolves an open match; `AlreadyResolved` if it is not open, `NotFound` if absent.
    async fn resolve_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
        resolution: MatchResolution,
        at: Timestamp,
    ) -> StoreResult<PendingMatch>;

    // ---- sync log
    async fn append_log(&self, entry: &LogEntry) -> StoreResult<()>;
    /// Newest first, expired rows excluded.
    async fn list_log(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        filter: LogFilter,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<LogEntry>>;
    async fn get_log_entry(
        &self,
        tenant: &TenantId,
        id: &LogEntryId,
        now: Timestamp,
    ) -> StoreResult<Option<LogEntry>>;
    /// Deletes rows whose expiry has passed; returns how many. DynamoDB leaves this to
    /// TTL and returns 0.
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64>;

    // ---- webhook dedupe
    /// Records `key` until `expires_at`. True if it was not already recorded (or its
    /// earlier record has expired): the caller is the first to see this event.
    async fn record_event_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Which of `keys` are recorded and not expired at `now`. Intake checks a batch's keys
    /// before it enqueues and records them ([`Store::record_events`]) only after, so an
    /// event is seen once its job is queued.
    async fn events_recorded(
        &self,
        keys: &[String],
        now: Timestamp,
    ) -> StoreResult<std::collections::BTreeSet<String>>;
    /// Records every one of `keys` until `expires_at`, recorded before or not.
    async fn record_events(&self, keys: &[String], expires_at: Timestamp) -> StoreResult<()>;

    // ---- pass leases
    /// Claims the one full pass of a connection for `run` until `expires_at`, by a
    /// conditional write: granted when no run holds it, the holder's lease has expired
    /// (`<= now`), or `run` holds it already (a renewal). Returns the run that holds the
    /// lease afterwards: `run` itself when granted.
    async fn claim_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<SyncRunId>;
    /// Ends `run`'s lease; nothing happens when another run holds it.
    async fn release_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
    ) -> StoreResult<()>;

    // ---- OAuth state
    async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()>;
    /// Returns and deletes the state, at most once; `None` if unknown, taken or expired.
    async fn take_oauth_state(
        &self,
        state: &str,
        now: Timestamp,
    ) -> StoreResult<Option<OAuthState>>;

    // ---- sync runs
    async fn get_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
    ) -> StoreResult<Option<SyncRun>>;
    /// Writes the run if its stored version equals `run.version` (0: new); returns it
    /// with the bumped version. Counters are written as given.
    async fn put_sync_run(&self, run: &SyncRun) -> StoreResult<SyncRun>;
    /// Atomically adds `delta` to the run's counters (many workers report at once);
    /// does not touch the run's version.
    async fn add_sync_counters(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
        delta: &SyncCounters,
    ) -> StoreResult<()>;
    /// The connection's runs, newest first.
    async fn list_sync_runs(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
    ) -> StoreResult<Page<SyncRun>>;
    /// Remembers companies a run will archive if the guard allows; putting one again
    /// replaces it. They are read until `expires_at`, then purged.
    async fn put_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        archives: &[PendingArchive],
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// A run's pending archives, each once, in source-id order.
    async fn list_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<PendingArchive>>;
    /// Saves chunk `chunk` of what a run's listing of `kind` saw; putting one again
    /// replaces it. Chunks are read until `expires_at`, then purged. A chunk holds at most
    /// [`LISTED_CHUNK_IDS`] ids.
    #[allow(clippy::too_many_arguments)]
    async fn put_listed_ids(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        kind: ObjectKind,
        chunk: u32,
        ids: &ListedIds,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Every live chunk of what the run's listing of `kind` saw, in chunk order.
    async fn listed_ids(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        kind: ObjectKind,
        now: Timestamp,
    ) -> StoreResult<Vec<ListedIds>>;

    // ---- notifications
    /// Writes the notification if its stored version equals `notification.version` (0:
    /// new, where an expired one counts as absent); returns it with the bumped version.
    /// One with `expires_at` is read until then and purged after; one without stays.
    async fn put_notification(
        &self,
        notification: &Notification,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Notification>;
    /// The tenant's live notifications, in id order (connection, kind, incident).
    async fn list_notifications(
        &self,
        tenant: &TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<Notification>>;

    // ---- conflict audit
    /// Writes the conflict if its stored version equals `conflict.version` (0: new, where
    /// an expired one counts as absent); returns it with the bumped version. It is read
    /// until its `expires_at`.
    async fn put_conflict(&self, conflict: &Conflict, now: Timestamp) -> StoreResult<Conflict>;
    /// A connection's live conflicts, newest first.
    async fn list_conflicts(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<Conflict>>;
    async fn get_conflict(
        &self,
        tenant: &TenantId,
        id: &ConflictId,
        now: Timestamp,
    ) -> StoreResult<Option<Conflict>>;
}

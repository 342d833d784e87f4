//! The sync engine: fetch -> map -> match -> apply, the record worker, the reconciler,
//! webhook change intake and the admin operations. It reaches the world only through the
//! ports (store, queues) and the providers.

pub mod admin;
pub mod apply;
pub mod billing;
pub mod conflicts;
pub mod connect;
mod direction;
pub mod intake;
mod listed;
pub mod mapping;
pub mod matcher;
pub mod notifications;
pub mod push;
pub mod reconcile;
pub mod records;
pub mod retry;
pub mod schedule;
pub mod test_lead;
pub mod two_way;
pub mod two_way_push;
pub mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{
    Connection, ConnectionId, ConnectionStatus, Currency, ErrorCode, Job, LogEntry, ObjectKind,
    ParseError, Provider, TenantId, Timestamp,
};
use crate::ports::{JobQueue, OutgoingMessage, QueueError, Store, StoreError};
use crate::provider::{ProviderError, RecordWriter, SourceProvider};
use mapping::Schema;
use retry::RetryPolicy;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("gave up after repeated write conflicts")]
    Contention,
    #[error("no {0} provider is configured")]
    ProviderNotConfigured(Provider),
}

impl EngineError {
    /// The sync log's code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Provider(e) => e.code,
            EngineError::Store(StoreError::Backend(_)) | EngineError::Queue(_) => {
                ErrorCode::StoreUnavailable
            }
            _ => ErrorCode::Internal,
        }
    }
}

/// The provider account a connection syncs: links are keyed by it, so a connection that
/// does not know it yet (never connected) has nothing to read or write.
pub(crate) fn account_of(
    connection: &Connection,
) -> Result<&crate::model::ProviderAccountId, EngineError> {
    connection
        .account_id
        .as_ref()
        .ok_or_else(|| unbound(connection))
}

/// A record of the connection's provider account, as links are keyed.
pub(crate) fn source_of(
    connection: &Connection,
    kind: ObjectKind,
    source_id: &crate::model::SourceId,
) -> Result<crate::model::SourceRef, EngineError> {
    connection
        .source_ref(kind, source_id)
        .ok_or_else(|| unbound(connection))
}

fn unbound(connection: &Connection) -> EngineError {
    EngineError::Corrupt(format!(
        "connection {} syncs before its provider account is known",
        connection.id
    ))
}

impl EngineError {
    /// How long the provider asked us to wait (`Retry-After`), when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            EngineError::Provider(e) => e.retry_after,
            _ => None,
        }
    }

    /// The scopes the provider said were missing (`permission_denied`).
    pub fn missing_scopes(&self) -> &[String] {
        match self {
            EngineError::Provider(e) => &e.missing_scopes,
            _ => &[],
        }
    }

    /// The provider's response body, cut to what a log row keeps.
    pub fn logged_response(&self) -> Option<String> {
        match self {
            EngineError::Provider(e) => e.body.as_deref().map(LogEntry::truncate_response),
            _ => None,
        }
    }
}

/// Tunables, all with the documented defaults.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// A reconciliation that would archive more than this share of a connection's
    /// customers holds the archives for the admin.
    pub mass_archive_share: f64,
    /// ... but never holds when it archives at most this many (small tenants).
    pub mass_archive_floor: u64,
    /// The currency of HubSpot's `annualrevenue` (the portal's company currency).
    pub arr_currency: Currency,
    pub retry: RetryPolicy,
    /// A change the reconciler finds that is older than this was missed by the webhooks.
    pub webhook_miss_grace: Duration,
    /// How long a provider schema is reused before it is read again.
    pub schema_ttl: Duration,
    /// Records per page in a reconciliation.
    pub page_size: usize,
    /// `last incremental update` is written at most this often per connection.
    pub incremental_touch_interval: Duration,
    /// Dedupe keys of webhook events live this long (providers retry for up to 3 days).
    pub event_dedupe_ttl: Duration,
    /// A pass lease whose run was never written is taken over once it is this old (a
    /// start writes its run milliseconds after the lease; one that died in between would
    /// otherwise block every start until the lease lapses).
    pub unwritten_run_grace: Duration,
    /// A running pass that has not moved for this long is reported stuck.
    pub stuck_pass_after: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            mass_archive_share: 0.10,
            mass_archive_floor: 5,
            arr_currency: Currency::parse("USD")
                .unwrap_or_else(|_| unreachable!("USD is a valid code")),
            retry: RetryPolicy::default(),
            webhook_miss_grace: Duration::from_secs(300),
            schema_ttl: Duration::from_secs(300),
            page_size: 100,
            incremental_touch_interval: Duration::from_secs(10),
            event_dedupe_ttl: Duration::from_secs(3 * 24 * 3600),
            unwritten_run_grace: Duration::from_secs(60),
            stuck_pass_after: Duration::from_secs(3600),
        }
    }
}

type SchemaKey = (ConnectionId, ObjectKind);

/// Everything a handler needs, built once per process (Lambda cold start or local stack).
pub struct Engine {
    pub store: Arc<dyn Store>,
    /// Record jobs (the record worker's queue).
    pub record_jobs: Arc<dyn JobQueue>,
    /// Reconcile jobs, one per connection run and one per continuation.
    pub reconcile_jobs: Arc<dyn JobQueue>,
    providers: BTreeMap<Provider, Arc<dyn SourceProvider>>,
    writers: BTreeMap<Provider, Arc<dyn RecordWriter>>,
    pub settings: EngineSettings,
    schemas: Mutex<HashMap<SchemaKey, (Instant, Arc<Schema>)>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        record_jobs: Arc<dyn JobQueue>,
        reconcile_jobs: Arc<dyn JobQueue>,
        settings: EngineSettings,
    ) -> Self {
        Self {
            store,
            record_jobs,
            reconcile_jobs,
            providers: BTreeMap::new(),
            writers: BTreeMap::new(),
            settings,
            schemas: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_provider(mut self, provider: Arc<dyn SourceProvider>) -> Self {
        self.providers.insert(provider.provider(), provider);
        self
    }

    /// Lets connections of `which` push records (outbound and two-way sync).
    pub fn with_writer(mut self, which: Provider, writer: Arc<dyn RecordWriter>) -> Self {
        self.writers.insert(which, writer);
        self
    }

    /// The provider's writer, when its connections can push.
    pub fn writer(&self, which: Provider) -> Option<Arc<dyn RecordWriter>> {
        self.writers.get(&which).cloned()
    }

    pub fn provider(&self, which: Provider) -> Result<Arc<dyn SourceProvider>, EngineError> {
        self.providers
            .get(&which)
            .cloned()
            .ok_or(EngineError::ProviderNotConfigured(which))
    }

    /// The provider's schema of one object kind, cached per connection for `schema_ttl`.
    pub async fn schema(
        &self,
        connection: &Connection,
        kind: ObjectKind,
    ) -> Result<Arc<Schema>, EngineError> {
        let key = (connection.id.clone(), kind);
        let ttl = self.settings.schema_ttl;
        if let Ok(cache) = self.schemas.lock()
            && let Some((at, schema)) = cache.get(&key)
            && at.elapsed() < ttl
        {
            return Ok(schema.clone());
        }
        let provider = self.provider(connection.provider)?;
        let schema = Arc::new(Schema::new(provider.properties(connection, kind).await?));
        if let Ok(mut cache) = self.schemas.lock() {
            cache.insert(key, (Instant::now(), schema.clone()));
        }
        Ok(schema)
    }

    /// Forgets cached schemas of a connection (after its mapping changed or broke).
    pub fn forget_schemas(&self, connection: &ConnectionId) {
        if let Ok(mut cache) = self.schemas.lock() {
            cache.retain(|(id, _), _| id != connection);
        }
    }

    /// Re-reads a connection and applies `change` under the store's version check, retrying
    /// when another writer got there first, then reviews its notifications. Returns the
    /// connection as stored.
    pub async fn update_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        mut change: impl FnMut(&mut Connection) -> bool,
    ) -> Result<Option<Connection>, EngineError> {
        for _ in 0..8 {
            let Some(mut connection) = self.store.get_connection(tenant, id).await? else {
                return Ok(None);
            };
            if !change(&mut connection) {
                return Ok(Some(connection));
            }
            connection.updated_at = Timestamp::now();
            match self.store.put_connection(&connection).await {
                Ok(stored) => {
                    self.review_notifications_or_log(&stored).await;
                    return Ok(Some(stored));
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contention)
    }

    /// What a provider's refusal means for its connection: `oauth_revoked` turns a Connected
    /// connection to Reauthorize (its jobs stop until the admin connects again),
    /// `permission_denied` and `filter_invalid` flag it. Other codes change nothing.
    pub async fn apply_refusal(
        &self,
        connection: &Connection,
        code: ErrorCode,
        missing_scopes: &[String],
    ) -> Result<(), EngineError> {
        match code {
            ErrorCode::OauthRevoked => {
                self.update_connection(&connection.tenant_id, &connection.id, |c| {
                    let changed = c.status == ConnectionStatus::Connected;
                    c.status = ConnectionStatus::Reauthorize;
                    changed
                })
                .await?;
            }
            ErrorCode::PermissionDenied => {
                let now = Timestamp::now();
                self.update_connection(&connection.tenant_id, &connection.id, |c| {
                    c.flags.permission_denied_at = Some(now);
                    c.flags
                        .missing_scopes
                        .extend(missing_scopes.iter().cloned());
                    c.flags.missing_scopes.sort();
                    c.flags.missing_scopes.dedup();
                    true
                })
                .await?;
            }
            ErrorCode::FilterInvalid => {
                let now = Timestamp::now();
                self.update_connection(&connection.tenant_id, &connection.id, |c| {
                    c.flags.filter_invalid_at = Some(now);
                    true
                })
                .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Stores credentials the provider rotated while serving this connection (Stripe's
    /// refresh tokens), so the next process does not hold one the provider refuses.
    pub async fn persist_rotated_credentials(
        &self,
        connection: &Connection,
    ) -> Result<(), EngineError> {
        let provider = self.provider(connection.provider)?;
        if let Some(sealed) = provider.updated_credentials(connection).await? {
            self.update_connection(&connection.tenant_id, &connection.id, |c| {
                c.credentials = Some(sealed.clone());
                true
            })
            .await?;
        }
        Ok(())
    }

    pub async fn enqueue_records(&self, jobs: &[Job]) -> Result<(), EngineError> {
        let messages: Vec<OutgoingMessage> = jobs
            .iter()
            .map(|j| OutgoingMessage::now(j.to_body()))
            .collect();
        self.record_jobs.send_batch(&messages).await?;
        Ok(())
    }

    /// Appends a log row; a failure to log is reported, never allowed to fail the job.
    pub async fn log(&self, entry: LogEntry) {
        if let Err(e) = self.store.append_log(&entry).await {
            tracing::error!(error = %e, tenant = %entry.tenant_id, connection = %entry.connection_id, "could not append a sync log row");
        }
    }
}

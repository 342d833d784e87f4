//! Fault injection around the real adapters: a store and a queue that pass every call
//! through, except the calls a test (or the simulation) told to fail, or to crash at.
//! Used to prove what the engine does when a write fails half-way, or when the process
//! dies at an await point (a crash is a panic that the caller, playing the Lambda
//! runtime, catches: nothing after that point runs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use async_trait::async_trait;
use connector::model::*;
use connector::ports::{
    ArchivedFilter, ContactWrite, CustomerWrite, JobQueue, LogFilter, OAuthState, OutgoingMessage,
    Page, PageRequest, QueueError, QueueResult, ReceivedMessage, Store, StoreError, StoreResult,
};

/// Which calls fail: per operation name, how many calls to let through before the next
/// one fails (once).
#[derive(Default)]
pub struct Faults {
    planned: Mutex<HashMap<&'static str, usize>>,
    injected: Mutex<usize>,
    crashes: Mutex<HashMap<&'static str, usize>>,
    crashed: Mutex<usize>,
    /// Crashes fire only while armed: around the calls the caller can survive (a job, a
    /// pass's step, a webhook delivery), never in its own bookkeeping.
    armed: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("injected fault in {0}")]
pub struct InjectedFault(&'static str);

/// The payload of an injected crash (see [`quiet_injected_crashes`]).
#[derive(Debug)]
pub struct InjectedCrash(pub &'static str);

/// Keeps the panic hook from printing injected crashes (the simulation makes hundreds);
/// every other panic is printed as before.
pub fn quiet_injected_crashes() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<InjectedCrash>().is_none() {
                previous(info);
            }
        }));
    });
}

impl Faults {
    /// The call to `operation` after `skip` successful ones fails, once.
    pub fn fail(&self, operation: &'static str, skip: usize) {
        lock(&self.planned).insert(operation, skip);
    }

    /// The call to `operation` after `skip` armed ones crashes (panics), once.
    pub fn crash(&self, operation: &'static str, skip: usize) {
        lock(&self.crashes).insert(operation, skip);
    }

    pub fn arm_crashes(&self, armed: bool) {
        self.armed.store(armed, Ordering::SeqCst);
    }

    /// How many crashes were injected so far.
    pub fn crashed(&self) -> usize {
        *lock(&self.crashed)
    }

    /// No more planned faults or crashes.
    pub fn clear(&self) {
        lock(&self.planned).clear();
        lock(&self.crashes).clear();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        *lock(&self.injected)
    }

    fn fires(&self, operation: &'static str) -> bool {
        let fires = due(&self.planned, operation);
        if fires {
            *lock(&self.injected) += 1;
        }
        fires
    }

    fn crash_here(&self, operation: &'static str) {
        if self.armed.load(Ordering::SeqCst) && due(&self.crashes, operation) {
            *lock(&self.crashed) += 1;
            std::panic::panic_any(InjectedCrash(operation));
        }
    }

    fn store(&self, operation: &'static str) -> StoreResult<()> {
        self.crash_here(operation);
        if self.fires(operation) {
            return Err(StoreError::backend(InjectedFault(operation)));
        }
        Ok(())
    }

    fn queue(&self, operation: &'static str) -> QueueResult<()> {
        self.crash_here(operation);
        if self.fires(operation) {
            return Err(QueueError::Backend(Box::new(InjectedFault(operation))));
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether the call to `operation` is the planned one: counts its skips down, and takes
/// the plan away when it comes due (each plan fires once).
fn due(planned: &Mutex<HashMap<&'static str, usize>>, operation: &'static str) -> bool {
    let mut planned = lock(planned);
    match planned.get_mut(operation) {
        Some(0) => {
            planned.remove(operation);
            true
        }
        Some(skip) => {
            *skip -= 1;
            false
        }
        None => false,
    }
}

/// A store that fails where its [`Faults`] say and otherwise is `inner`.
pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub faults: Arc<Faults>,
}

/// A queue that fails where its [`Faults`] say and otherwise is `inner`.
pub struct FaultyQueue {
    pub inner: Arc<dyn JobQueue>,
    pub faults: Arc<Faults>,
}

macro_rules! pass {
    ($self:ident, $op:literal, $faults:ident, $call:expr) => {{
        $self.faults.$faults($op)?;
        $call.await
    }};
}

#[async_trait]
impl Store for FaultyStore {
    async fn put_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        pass!(self, "put_tenant", store, self.inner.put_tenant(tenant))
    }
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        pass!(self, "get_tenant", store, self.inner.get_tenant(id))
    }
    async fn get_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> StoreResult<Option<Connection>> {
        pass!(
            self,
            "get_connection",
            store,
            self.inner.get_connection(tenant, id)
        )
    }
    async fn put_connection(&self, connection: &Connection) -> StoreResult<Connection> {
        pass!(
            self,
            "put_connection",
            store,
            self.inner.put_connection(connection)
        )
    }
    async fn list_connections(&self, tenant: &TenantId) -> StoreResult<Vec<Connection>> {
        pass!(
            self,
            "list_connections",
            store,
            self.inner.list_connections(tenant)
        )
    }
    async fn find_connections_by_account(
        &self,
        provider: Provider,
        account: &ProviderAccountId,
    ) -> StoreResult<Vec<Connection>> {
        pass!(
            self,
            "find_connections_by_account",
            store,
            self.inner.find_connections_by_account(provider, account)
        )
    }
    async fn list_all_connections(&self, page: PageRequest) -> StoreResult<Page<Connection>> {
        pass!(
            self,
            "list_all_connections",
            store,
            self.inner.list_all_connections(page)
        )
    }
    async fn get_customer(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<Option<Customer>> {
        pass!(
            self,
            "get_customer",
            store,
            self.inner.get_customer(tenant, id)
        )
    }
    async fn write_customer(&self, write: CustomerWrite<'_>) -> StoreResult<Customer> {
        pass!(
            self,
            "write_customer",
            store,
            self.inner.write_customer(write)
        )
    }
    async fn find_customers_by_domain(
        &self,
        tenant: &TenantId,
        domain: &Domain,
    ) -> StoreResult<Vec<Customer>> {
        pass!(
            self,
            "find_customers_by_domain",
            store,
            self.inner.find_customers_by_domain(tenant, domain)
        )
    }
    async fn find_customers_by_name(
        &self,
        tenant: &TenantId,
        name: &NormalizedName,
    ) -> StoreResult<Vec<Customer>> {
        pass!(
            self,
            "find_customers_by_name",
            store,
            self.inner.find_customers_by_name(tenant, name)
        )
    }
    async fn list_customers(
        &self,
        tenant: &TenantId,
        filter: ArchivedFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Customer>> {
        pass!(
            self,
            "list_customers",
            store,
            self.inner.list_customers(tenant, filter, page)
        )
    }
    async fn delete_customer_permanently(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> StoreResult<()> {
        pass!(
            self,
            "delete_customer_permanently",
            store,
            self.inner.delete_customer_permanently(tenant, id)
        )
    }
    async fn get_contact(&self, tenant: &TenantId, id: &ContactId) -> StoreResult<Option<Contact>> {
        pass!(
            self,
            "get_contact",
            store,
            self.inner.get_contact(tenant, id)
        )
    }
    async fn write_contact(&self, write: ContactWrite<'_>) -> StoreResult<Contact> {
        pass!(
            self,
            "write_contact",
            store,
            self.inner.write_contact(write)
        )
    }
    async fn list_contacts_of_customer(
        &self,
        tenant: &TenantId,
        customer: &CustomerId,
        page: PageRequest,
    ) -> StoreResult<Page<Contact>> {
        pass!(
            self,
            "list_contacts_of_customer",
            store,
            self.inner.list_contacts_of_customer(tenant, customer, page)
        )
    }
    async fn get_link(
        &self,
        tenant: &TenantId,
        source: &SourceRef,
    ) -> StoreResult<Option<SourceLink>> {
        pass!(self, "get_link", store, self.inner.get_link(tenant, source))
    }
    async fn put_link(&self, link: &SourceLink) -> StoreResult<()> {
        pass!(self, "put_link", store, self.inner.put_link(link))
    }
    async fn delete_link(&self, tenant: &TenantId, source: &SourceRef) -> StoreResult<()> {
        pass!(
            self,
            "delete_link",
            store,
            self.inner.delete_link(tenant, source)
        )
    }
    async fn list_links(
        &self,
        tenant: &TenantId,
        provider: Provider,
        account: &ProviderAccountId,
        kind: ObjectKind,
        page: PageRequest,
    ) -> StoreResult<Page<SourceLink>> {
        pass!(
            self,
            "list_links",
            store,
            self.inner.list_links(tenant, provider, account, kind, page)
        )
    }
    async fn links_to(
        &self,
        tenant: &TenantId,
        target: &LinkTarget,
    ) -> StoreResult<Vec<SourceLink>> {
        pass!(self, "links_to", store, self.inner.links_to(tenant, target))
    }
    async fn create_pending_match(&self, m: &PendingMatch) -> StoreResult<()> {
        pass!(
            self,
            "create_pending_match",
            store,
            self.inner.create_pending_match(m)
        )
    }
    async fn get_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
    ) -> StoreResult<Option<PendingMatch>> {
        pass!(
            self,
            "get_pending_match",
            store,
            self.inner.get_pending_match(tenant, id)
        )
    }
    async fn find_pending_match_for_source(
        &self,
        tenant: &TenantId,
        provider: Provider,
        kind: ObjectKind,
        source_id: &SourceId,
    ) -> StoreResult<Option<PendingMatch>> {
        pass!(
            self,
            "find_pending_match_for_source",
            store,
            self.inner
                .find_pending_match_for_source(tenant, provider, kind, source_id)
        )
    }
    async fn list_pending_matches(
        &self,
        tenant: &TenantId,
        status: PendingMatchStatus,
        page: PageRequest,
    ) -> StoreResult<Page<PendingMatch>> {
        pass!(
            self,
            "list_pending_matches",
            store,
            self.inner.list_pending_matches(tenant, status, page)
        )
    }
    async fn resolve_pending_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
        resolution: MatchResolution,
        at: Timestamp,
    ) -> StoreResult<PendingMatch> {
        pass!(
            self,
            "resolve_pending_match",
            store,
            self.inner.resolve_pending_match(tenant, id, resolution, at)
        )
    }
    async fn append_log(&self, entry: &LogEntry) -> StoreResult<()> {
        pass!(self, "append_log", store, self.inner.append_log(entry))
    }
    async fn list_log(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        filter: LogFilter,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<LogEntry>> {
        pass!(
            self,
            "list_log",
            store,
            self.inner.list_log(tenant, connection, filter, page, now)
        )
    }
    async fn get_log_entry(
        &self,
        tenant: &TenantId,
        id: &LogEntryId,
        now: Timestamp,
    ) -> StoreResult<Option<LogEntry>> {
        pass!(
            self,
            "get_log_entry",
            store,
            self.inner.get_log_entry(tenant, id, now)
        )
    }
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        pass!(self, "purge_expired", store, self.inner.purge_expired(now))
    }
    async fn record_event_once(
        &self,
        key: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        pass!(
            self,
            "record_event_once",
            store,
            self.inner.record_event_once(key, expires_at, now)
        )
    }
    async fn events_recorded(
        &self,
        keys: &[String],
        now: Timestamp,
    ) -> StoreResult<std::collections::BTreeSet<String>> {
        pass!(
            self,
            "events_recorded",
            store,
            self.inner.events_recorded(keys, now)
        )
    }
    async fn record_events(&self, keys: &[String], expires_at: Timestamp) -> StoreResult<()> {
        pass!(
            self,
            "record_events",
            store,
            self.inner.record_events(keys, expires_at)
        )
    }
    async fn claim_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<SyncRunId> {
        pass!(
            self,
            "claim_pass",
            store,
            self.inner
                .claim_pass(tenant, connection, run, expires_at, now)
        )
    }
    async fn release_pass(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
    ) -> StoreResult<()> {
        pass!(
            self,
            "release_pass",
            store,
            self.inner.release_pass(tenant, connection, run)
        )
    }
    async fn put_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        pass!(
            self,
            "put_oauth_state",
            store,
            self.inner.put_oauth_state(state)
        )
    }
    async fn take_oauth_state(
        &self,
        state: &str,
        now: Timestamp,
    ) -> StoreResult<Option<OAuthState>> {
        pass!(
            self,
            "take_oauth_state",
            store,
            self.inner.take_oauth_state(state, now)
        )
    }
    async fn get_sync_run(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
    ) -> StoreResult<Option<SyncRun>> {
        pass!(
            self,
            "get_sync_run",
            store,
            self.inner.get_sync_run(tenant, connection, id)
        )
    }
    async fn put_sync_run(&self, run: &SyncRun) -> StoreResult<SyncRun> {
        pass!(self, "put_sync_run", store, self.inner.put_sync_run(run))
    }
    async fn add_sync_counters(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &SyncRunId,
        delta: &SyncCounters,
    ) -> StoreResult<()> {
        pass!(
            self,
            "add_sync_counters",
            store,
            self.inner.add_sync_counters(tenant, connection, id, delta)
        )
    }
    async fn list_sync_runs(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
    ) -> StoreResult<Page<SyncRun>> {
        pass!(
            self,
            "list_sync_runs",
            store,
            self.inner.list_sync_runs(tenant, connection, page)
        )
    }
    async fn put_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        archives: &[PendingArchive],
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        pass!(
            self,
            "put_pending_archives",
            store,
            self.inner
                .put_pending_archives(tenant, connection, run, archives, expires_at)
        )
    }
    async fn list_pending_archives(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<PendingArchive>> {
        pass!(
            self,
            "list_pending_archives",
            store,
            self.inner
                .list_pending_archives(tenant, connection, run, page, now)
        )
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
        pass!(
            self,
            "put_listed_ids",
            store,
            self.inner
                .put_listed_ids(tenant, connection, run, kind, chunk, ids, expires_at)
        )
    }
    async fn listed_ids(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        run: &SyncRunId,
        kind: ObjectKind,
        now: Timestamp,
    ) -> StoreResult<Vec<ListedIds>> {
        pass!(
            self,
            "listed_ids",
            store,
            self.inner.listed_ids(tenant, connection, run, kind, now)
        )
    }
    async fn put_notification(
        &self,
        notification: &Notification,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<Notification> {
        pass!(
            self,
            "put_notification",
            store,
            self.inner.put_notification(notification, expires_at, now)
        )
    }
    async fn list_notifications(
        &self,
        tenant: &TenantId,
        now: Timestamp,
    ) -> StoreResult<Vec<Notification>> {
        pass!(
            self,
            "list_notifications",
            store,
            self.inner.list_notifications(tenant, now)
        )
    }
    async fn put_conflict(&self, conflict: &Conflict, now: Timestamp) -> StoreResult<Conflict> {
        pass!(
            self,
            "put_conflict",
            store,
            self.inner.put_conflict(conflict, now)
        )
    }
    async fn list_conflicts(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
        now: Timestamp,
    ) -> StoreResult<Page<Conflict>> {
        pass!(
            self,
            "list_conflicts",
            store,
            self.inner.list_conflicts(tenant, connection, page, now)
        )
    }
    async fn get_conflict(
        &self,
        tenant: &TenantId,
        id: &ConflictId,
        now: Timestamp,
    ) -> StoreResult<Option<Conflict>> {
        pass!(
            self,
            "get_conflict",
            store,
            self.inner.get_conflict(tenant, id, now)
        )
    }
}

#[async_trait]
impl JobQueue for FaultyQueue {
    async fn send_batch(&self, messages: &[OutgoingMessage]) -> QueueResult<()> {
        pass!(self, "send_batch", queue, self.inner.send_batch(messages))
    }
    async fn receive(&self, max: usize, visibility: Duration) -> QueueResult<Vec<ReceivedMessage>> {
        pass!(self, "receive", queue, self.inner.receive(max, visibility))
    }
    async fn delete(&self, receipt: &str) -> QueueResult<()> {
        pass!(self, "delete", queue, self.inner.delete(receipt))
    }
    async fn change_visibility(&self, receipt: &str, timeout: Duration) -> QueueResult<()> {
        pass!(
            self,
            "change_visibility",
            queue,
            self.inner.change_visibility(receipt, timeout)
        )
    }
    async fn receive_dead_letters(
        &self,
        max: usize,
        visibility: Duration,
    ) -> QueueResult<Vec<ReceivedMessage>> {
        pass!(
            self,
            "receive_dead_letters",
            queue,
            self.inner.receive_dead_letters(max, visibility)
        )
    }
    async fn delete_dead_letter(&self, receipt: &str) -> QueueResult<()> {
        pass!(
            self,
            "delete_dead_letter",
            queue,
            self.inner.delete_dead_letter(receipt)
        )
    }
    async fn redrive_dead_letters(&self) -> QueueResult<u64> {
        pass!(
            self,
            "redrive_dead_letters",
            queue,
            self.inner.redrive_dead_letters()
        )
    }
    async fn approximate_depth(&self) -> QueueResult<u64> {
        pass!(
            self,
            "approximate_depth",
            queue,
            self.inner.approximate_depth()
        )
    }
}

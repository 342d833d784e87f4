//! What the admin API does, tenant by tenant. Every operation takes the caller's tenant
//! and reads only through it: another tenant's id is simply not found.

use serde::Serialize;

use super::apply::Outcome;
use super::mapping::{self, FieldProblem};
use super::reconcile::StartError;
use super::{Engine, EngineError};
use crate::model::{
    CompanyFilter, Connection, ConnectionFlags, ConnectionId, ConnectionStatus, Contact, Customer,
    CustomerId, Domain, ErrorCode, ErrorExplained, FieldMapping, FilterChoices, Job, JobCause,
    JobKind, LinkTarget, LogEntry, LogEntryId, LogStatus, MatchResolution, NightlyTime,
    NormalizedName, ObjectKind, PendingArchive, PendingMatch, PendingMatchId, PendingMatchStatus,
    Provider, ProviderAccountId, PushSettings, SourceId, SourceLink, SourceRef, SyncDirection,
    SyncRun, SyncRunId, SyncRunStatus, SyncTrigger, TenantId, Timestamp,
};
use crate::ports::{ArchivedFilter, LogFilter, Page, PageRequest, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the field mapping is invalid")]
    InvalidMapping(Vec<FieldProblem>),
    #[error("the company filter is invalid: {}", .0.join("; "))]
    InvalidFilter(Vec<String>),
    #[error("the connection is not connected")]
    NotConnected,
    /// Pushing needs scopes the connection was not granted.
    #[error("the connection lacks the scopes {}: Reauthorize with write scopes to grant them", .0.join(", "))]
    MissingScopes(Vec<String>),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadCursor => AdminError::Invalid(StoreError::BadCursor.to_string()),
            StoreError::NotFound { entity } => AdminError::NotFound(entity),
            StoreError::NotArchived => {
                AdminError::Conflict("only archived customers can be deleted permanently".into())
            }
            StoreError::AlreadyResolved => {
                AdminError::Conflict("the match is already resolved".into())
            }
            StoreError::VersionConflict { entity, .. } => AdminError::Conflict(format!(
                "the {entity} was changed at the same time; try again"
            )),
            other => AdminError::Engine(other.into()),
        }
    }
}

impl From<StartError> for AdminError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::AlreadyRunning(run) => {
                AdminError::Conflict(format!("a sync is already running (run {run})"))
            }
            StartError::NotConnected => AdminError::NotConnected,
            StartError::OutboundOnly => AdminError::Invalid(StartError::OutboundOnly.to_string()),
            StartError::Engine(e) => AdminError::Engine(e),
        }
    }
}

impl AdminError {
    /// The machine code in the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::NotFound(_) => "not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::Invalid(_) => "invalid_request",
            AdminError::InvalidMapping(_) => "field_mapping_invalid",
            AdminError::InvalidFilter(_) => "filter_invalid",
            AdminError::NotConnected => "not_connected",
            AdminError::MissingScopes(_) => "permission_denied",
            AdminError::Engine(e) if e.code() == crate::model::ErrorCode::Internal => "internal",
            AdminError::Engine(e) => e.code().as_str(),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// A connection as the admin sees it: no credentials, ever.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionView {
    pub id: ConnectionId,
    pub provider: Provider,
    pub status: ConnectionStatus,
    /// The banner text for the status.
    pub banner: &'static str,
    pub account_id: Option<ProviderAccountId>,
    pub scopes: Vec<String>,
    pub company_filter: CompanyFilter,
    /// Inbound, outbound or two-way, and how pushes write.
    pub direction: SyncDirection,
    pub push: PushSettings,
    pub flags: ConnectionFlags,
    pub last_full_sync: Option<Timestamp>,
    pub last_incremental_update: Option<Timestamp>,
    /// When its nightly pass starts (UTC).
    pub nightly_at: NightlyTime,
    pub latest_run: Option<SyncRun>,
}

impl ConnectionView {
    pub(super) fn of(c: Connection, latest_run: Option<SyncRun>) -> Self {
        let banner = match c.status {
            ConnectionStatus::Connected if c.flags.archives_held => {
                "Connected: a sync wants to archive many customers and waits for your approval"
            }
            ConnectionStatus::Connected if c.flags.filter_invalid_at.is_some() => {
                "Connected, but the company filter names a list, stage or pipeline that no longer exists: pick another"
            }
            ConnectionStatus::Connected if c.flags.permission_denied_at.is_some() => {
                "Connected, but the provider refused some requests: check the app's scopes"
            }
            ConnectionStatus::Connected => "Connected",
            ConnectionStatus::Reauthorize => {
                "Reauthorize: the provider no longer accepts our access; connect again"
            }
            ConnectionStatus::Disconnected => "Disconnected",
        };
        Self {
            id: c.id,
            provider: c.provider,
            status: c.status,
            banner,
            account_id: c.account_id,
            scopes: c.scopes,
            company_filter: c.company_filter,
            direction: c.direction,
            push: c.push,
            flags: c.flags,
            last_full_sync: c.last_full_sync,
            last_incremental_update: c.last_incremental_update,
            nightly_at: c.nightly_at,
            latest_run,
        }
    }
}

/// Everything support needs about one log row, for the admin to send: the row (record
/// ids, the provider's response, the job that Retry sends), the error in words, and the
/// correlation id that finds the service's own logs.
#[derive(Clone, Debug, Serialize)]
pub struct SupportReport {
    pub generated_at: Timestamp,
    pub service_version: &'static str,
    pub error: Option<ErrorExplained>,
    pub entry: LogEntry,
}

/// Store pages one log search reads at most before it hands back a cursor.
pub const LOG_PAGES_PER_SEARCH: usize = 10;

/// Which log rows the admin asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub errors_only: bool,
    pub code: Option<ErrorCode>,
    /// The provider's record id, exactly.
    pub record_id: Option<String>,
}

impl LogQuery {
    /// From the admin's text: an empty code or record id is no filter; an unknown code is
    /// refused.
    pub fn from_text(
        errors_only: bool,
        code: Option<&str>,
        record_id: Option<&str>,
    ) -> AdminResult<Self> {
        fn given(raw: Option<&str>) -> Option<&str> {
            raw.map(str::trim).filter(|r| !r.is_empty())
        }
        let code = match given(code) {
            None => None,
            Some(raw) => Some(
                ErrorCode::parse(raw)
                    .ok_or_else(|| AdminError::Invalid(format!("no such error code {raw:?}")))?,
            ),
        };
        Ok(Self {
            errors_only,
            code,
            record_id: given(record_id).map(str::to_owned),
        })
    }

    fn keeps(&self, entry: &LogEntry) -> bool {
        self.code.is_none_or(|code| entry.error_code == Some(code))
            && self.record_id.as_deref().is_none_or(|wanted| {
                entry
                    .record_id
                    .as_ref()
                    .is_some_and(|id| id.as_str() == wanted)
            })
    }
}

/// A customer with where it comes from and who works there: the customer page.
#[derive(Clone, Debug, Serialize)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub customer: Customer,
    /// Its HubSpot company and Stripe customers (and any other linked source record).
    pub sources: Vec<SourceLink>,
    /// Its contacts, the first [`CONTACTS_PER_CUSTOMER`].
    pub contacts: Vec<Contact>,
}

pub const CONTACTS_PER_CUSTOMER: usize = 100;

/// Companies a filter preview reads at most.
pub const FILTER_PREVIEW_MAX: u64 = 10_000;

/// What a company filter would keep: `kept` of the `read` companies, all of the account's
/// when `complete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FilterPreview {
    pub kept: u64,
    pub read: u64,
    pub complete: bool,
}

/// The companies the mass-archive guard holds back, and the run that found them.
#[derive(Clone, Debug, Serialize)]
pub struct HeldArchives {
    pub run: Option<SyncRunId>,
    pub archives: Page<PendingArchive>,
}

/// Runs looked through for the one whose archives are held (runs after it are refused
/// while the flag stands, so it is among the newest).
const RUNS_SEARCHED_FOR_HELD: usize = 10;

/// What a resync of one customer did.
#[derive(Clone, Debug, Serialize)]
pub struct ResyncReport {
    pub records: usize,
    pub outcomes: Vec<String>,
}

impl Engine {
    pub async fn admin_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<Connection> {
        self.store
            .get_connection(tenant, id)
            .await?
            .ok_or(AdminError::NotFound("connection"))
    }

    pub async fn view_connection(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<ConnectionView> {
        let c = self.admin_connection(tenant, id).await?;
        let runs = self
            .store
            .list_sync_runs(tenant, id, PageRequest::first(1))
            .await?;
        Ok(ConnectionView::of(c, runs.items.into_iter().next()))
    }

    pub async fn list_connection_views(
        &self,
        tenant: &TenantId,
    ) -> AdminResult<Vec<ConnectionView>> {
        let mut views = Vec::new();
        for c in self.store.list_connections(tenant).await? {
            let runs = self
                .store
                .list_sync_runs(tenant, &c.id, PageRequest::first(1))
                .await?;
            views.push(ConnectionView::of(c, runs.items.into_iter().next()));
        }
        Ok(views)
    }

    pub async fn create_connection(
        &self,
        tenant: &TenantId,
        provider: Provider,
    ) -> AdminResult<ConnectionView> {
        self.provider(provider)?;
        let stored = self
            .store
            .put_connection(&Connection::new(tenant.clone(), provider, Timestamp::now()))
            .await?;
        Ok(ConnectionView::of(stored, None))
    }

    /// Stops syncing and forgets the tokens; keeps the field mapping, the filter and the data.
    pub async fn disconnect(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<ConnectionView> {
        let stored = self
            .update_connection(tenant, id, |c| {
                c.status = ConnectionStatus::Disconnected;
                c.credentials = None;
                true
            })
            .await?
            .ok_or(AdminError::NotFound("connection"))?;
        Ok(ConnectionView::of(stored, None))
    }

    /// A page of the connection's log, newest first, narrowed by `query`. The store pages
    /// by errors-only; the code and record narrowing reads on through at most
    /// [`LOG_PAGES_PER_SEARCH`] store pages, and the cursor resumes where it stopped.
    pub async fn admin_log(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        query: &LogQuery,
        page: PageRequest,
    ) -> AdminResult<Page<LogEntry>> {
        self.admin_connection(tenant, connection).await?;
        let limit = page.effective_limit();
        let filter = LogFilter {
            errors_only: query.errors_only,
        };
        let mut found = Page {
            items: Vec::new(),
            next: page.cursor,
        };
        for _ in 0..LOG_PAGES_PER_SEARCH {
            let read = self
                .store
                .list_log(
                    tenant,
                    connection,
                    filter,
                    PageRequest {
                        limit: limit - found.items.len(),
                        cursor: found.next.take(),
                    },
                    Timestamp::now(),
                )
                .await?;
            found
                .items
                .extend(read.items.into_iter().filter(|e| query.keeps(e)));
            found.next = read.next;
            if found.items.len() >= limit || found.next.is_none() {
                break;
            }
        }
        Ok(found)
    }

    /// Spends a one-time key (a console sign-in link) until `expires_at`: true the first
    /// time only.
    pub async fn spend_once(&self, key: &str, expires_at: Timestamp) -> AdminResult<bool> {
        Ok(self
            .store
            .record_event_once(&format!("once#{key}"), expires_at, Timestamp::now())
            .await?)
    }

    pub async fn admin_log_entry(
        &self,
        tenant: &TenantId,
        id: &LogEntryId,
    ) -> AdminResult<LogEntry> {
        self.store
            .get_log_entry(tenant, id, Timestamp::now())
            .await?
            .ok_or(AdminError::NotFound("log entry"))
    }

    /// The customer a log row's record is mirrored into (a contact's: its company's), if
    /// it is still linked.
    /// One log row bundled for support.
    pub async fn support_report(
        &self,
        tenant: &TenantId,
        id: &LogEntryId,
    ) -> AdminResult<SupportReport> {
        let entry = self.admin_log_entry(tenant, id).await?;
        Ok(SupportReport {
            generated_at: Timestamp::now(),
            service_version: env!("CARGO_PKG_VERSION"),
            error: entry.error_code.map(ErrorCode::explained),
            entry,
        })
    }

    pub async fn customer_of_log_entry(&self, entry: &LogEntry) -> AdminResult<Option<CustomerId>> {
        let (Some(kind), Some(record)) = (entry.object_kind, &entry.record_id) else {
            return Ok(None);
        };
        let connection = self
            .admin_connection(&entry.tenant_id, &entry.connection_id)
            .await?;
        self.customer_of_record(&connection, kind, record).await
    }

    /// The customer one of the connection's records is mirrored into (a contact's: its
    /// company's), if it is linked.
    pub async fn customer_of_record(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        record: &SourceId,
    ) -> AdminResult<Option<CustomerId>> {
        let Some(account) = connection.account_id.clone() else {
            return Ok(None);
        };
        let source = SourceRef {
            provider: connection.provider,
            account,
            kind,
            source_id: record.clone(),
        };
        let tenant = &connection.tenant_id;
        Ok(
            match self
                .store
                .get_link(tenant, &source)
                .await?
                .map(|l| l.target)
            {
                Some(LinkTarget::Customer(id)) => Some(id),
                Some(LinkTarget::Contact(id)) => self
                    .store
                    .get_contact(tenant, &id)
                    .await?
                    .and_then(|c| c.customer_id),
                None => None,
            },
        )
    }

    /// The connection's sync runs with their ledgers, newest first.
    pub async fn admin_runs(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        page: PageRequest,
    ) -> AdminResult<Page<SyncRun>> {
        self.admin_connection(tenant, id).await?;
        Ok(self.store.list_sync_runs(tenant, id, page).await?)
    }

    /// What the mass-archive guard holds for the connection: the companies the run that
    /// stopped wants to archive, in source-id order (none when nothing is held).
    pub async fn held_archives(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        page: PageRequest,
    ) -> AdminResult<HeldArchives> {
        let connection = self.admin_connection(tenant, id).await?;
        let none = HeldArchives {
            run: None,
            archives: Page {
                items: Vec::new(),
                next: None,
            },
        };
        if !connection.flags.archives_held {
            return Ok(none);
        }
        let runs = self
            .store
            .list_sync_runs(tenant, id, PageRequest::first(RUNS_SEARCHED_FOR_HELD))
            .await?;
        let Some(run) = runs
            .items
            .into_iter()
            .find(|r| r.status == SyncRunStatus::Completed && r.checkpoint.held > 0)
        else {
            return Ok(none);
        };
        let archives = self
            .store
            .list_pending_archives(tenant, id, &run.id, page, Timestamp::now())
            .await?;
        Ok(HeldArchives {
            run: Some(run.id),
            archives,
        })
    }

    /// Sends a failed row's job again (the Retry action).
    pub async fn retry_log_entry(&self, tenant: &TenantId, id: &LogEntryId) -> AdminResult<Job> {
        let entry = self.admin_log_entry(tenant, id).await?;
        let Some(mut job) = entry.retry_job else {
            return Err(AdminError::Conflict(
                "this log entry has nothing to retry".into(),
            ));
        };
        let connection = self.admin_connection(tenant, &entry.connection_id).await?;
        if !connection.accepts_jobs() {
            return Err(AdminError::NotConnected);
        }
        job.id = crate::model::JobId::generate();
        job.attempt = 0;
        job.enqueued_at = Timestamp::now();
        if let JobKind::SyncRecord { cause, .. } = &mut job.kind {
            *cause = JobCause::Retry {
                log_entry_id: id.clone(),
            };
        }
        self.enqueue_records(std::slice::from_ref(&job)).await?;
        Ok(job)
    }

    pub async fn run_sync_now(&self, tenant: &TenantId, id: &ConnectionId) -> AdminResult<SyncRun> {
        let connection = self.admin_connection(tenant, id).await?;
        Ok(self
            .start_sync(&connection, SyncTrigger::Manual, false)
            .await?)
    }

    /// Fetches every source record of one customer fresh and applies it now.
    pub async fn resync_customer(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
        provider: Provider,
    ) -> AdminResult<ResyncReport> {
        self.admin_customer(tenant, id).await?;
        let links = self
            .store
            .links_to(tenant, &LinkTarget::Customer(id.clone()))
            .await?;
        let mut report = ResyncReport {
            records: 0,
            outcomes: Vec::new(),
        };
        for link in links.into_iter().filter(|l| l.provider == provider) {
            let connection = self.admin_connection(tenant, &link.connection_id).await?;
            if !connection.accepts_jobs() {
                return Err(AdminError::NotConnected);
            }
            let applied = self
                .sync_record(&connection, link.object_kind, &link.source_id)
                .await?;
            report.records += 1;
            report.outcomes.push(describe(&applied.outcome));
            let job = Job::new(
                tenant.clone(),
                connection.id.clone(),
                provider,
                JobKind::SyncRecord {
                    object: link.object_kind,
                    source_id: link.source_id.clone(),
                    cause: JobCause::Resync,
                },
                Timestamp::now(),
            );
            self.record_outcome(
                &connection,
                &job,
                link.object_kind,
                &link.source_id,
                &applied,
                std::time::Duration::ZERO,
            )
            .await;
        }
        if report.records == 0 {
            return Err(AdminError::Conflict(format!(
                "this customer has no {provider} record to resync"
            )));
        }
        Ok(report)
    }

    pub async fn admin_customer(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> AdminResult<Customer> {
        self.store
            .get_customer(tenant, id)
            .await?
            .ok_or(AdminError::NotFound("customer"))
    }

    pub async fn admin_customer_detail(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> AdminResult<CustomerDetail> {
        let customer = self.admin_customer(tenant, id).await?;
        let sources = self
            .store
            .links_to(tenant, &LinkTarget::Customer(id.clone()))
            .await?;
        let contacts = self
            .store
            .list_contacts_of_customer(tenant, id, PageRequest::first(CONTACTS_PER_CUSTOMER))
            .await?
            .items;
        Ok(CustomerDetail {
            customer,
            sources,
            contacts,
        })
    }

    /// Customers `filter` admits whose domain or name is `query` once normalised (a domain
    /// when it reads as one: `acme.com`, `https://www.acme.com/`).
    pub async fn search_customers(
        &self,
        tenant: &TenantId,
        query: &str,
        filter: ArchivedFilter,
    ) -> AdminResult<Vec<Customer>> {
        let mut found = match Domain::parse(query) {
            Ok(domain) if query.contains('.') => {
                self.store.find_customers_by_domain(tenant, &domain).await?
            }
            _ => Vec::new(),
        };
        if let Some(name) = NormalizedName::of(query) {
            for customer in self.store.find_customers_by_name(tenant, &name).await? {
                if !found.iter().any(|c| c.id == customer.id) {
                    found.push(customer);
                }
            }
        }
        found.retain(|c| filter.admits(c.archived.is_some()));
        Ok(found)
    }

    pub async fn admin_customers(
        &self,
        tenant: &TenantId,
        filter: ArchivedFilter,
        page: PageRequest,
    ) -> AdminResult<Page<Customer>> {
        Ok(self.store.list_customers(tenant, filter, page).await?)
    }

    pub async fn delete_customer_permanently(
        &self,
        tenant: &TenantId,
        id: &CustomerId,
    ) -> AdminResult<()> {
        Ok(self.store.delete_customer_permanently(tenant, id).await?)
    }

    pub async fn admin_matches(
        &self,
        tenant: &TenantId,
        status: PendingMatchStatus,
        page: PageRequest,
    ) -> AdminResult<Page<PendingMatch>> {
        Ok(self
            .store
            .list_pending_matches(tenant, status, page)
            .await?)
    }

    /// Records the admin's choice and syncs the record at once under it. The choice sticks.
    pub async fn resolve_match(
        &self,
        tenant: &TenantId,
        id: &PendingMatchId,
        resolution: MatchResolution,
    ) -> AdminResult<PendingMatch> {
        let open = self
            .store
            .get_pending_match(tenant, id)
            .await?
            .ok_or(AdminError::NotFound("pending match"))?;
        if let MatchResolution::LinkTo { customer_id } = &resolution
            && !open.candidates.contains(customer_id)
        {
            self.admin_customer(tenant, customer_id).await?;
        }
        let resolved = self
            .store
            .resolve_pending_match(tenant, id, resolution, Timestamp::now())
            .await?;
        let job = Job::new(
            tenant.clone(),
            resolved.connection_id.clone(),
            resolved.provider,
            JobKind::SyncRecord {
                object: resolved.object_kind,
                source_id: resolved.source_id.clone(),
                cause: JobCause::Resync,
            },
            Timestamp::now(),
        );
        self.enqueue_records(std::slice::from_ref(&job)).await?;
        Ok(resolved)
    }

    /// Checks a mapping against the provider's current schema.
    pub async fn validate_field_mapping(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        candidate: &FieldMapping,
    ) -> AdminResult<Vec<FieldProblem>> {
        let connection = self.admin_connection(tenant, id).await?;
        self.mapping_problems(&connection, candidate, connection.direction)
            .await
    }

    /// Every problem of `candidate` under `direction`, against the provider's live schema.
    pub(super) async fn mapping_problems(
        &self,
        connection: &Connection,
        candidate: &FieldMapping,
        direction: SyncDirection,
    ) -> AdminResult<Vec<FieldProblem>> {
        self.forget_schemas(&connection.id);
        let mut problems = Vec::new();
        for kind in [ObjectKind::Company, ObjectKind::Contact] {
            if candidate.for_object(kind).next().is_none() {
                continue;
            }
            let schema = self.schema(connection, kind).await?;
            problems.extend(mapping::direction_problems(
                candidate, direction, kind, &schema,
            ));
            let mut unpinned = candidate.clone();
            for entry in &mut unpinned.entries {
                // A new mapping takes the provider's current type; only the name must exist.
                if !connection.field_mapping.entries.contains(entry) {
                    entry.source_type = None;
                }
            }
            problems.extend(mapping::validate_mapping(&unpinned, kind, &schema));
        }
        Ok(problems)
    }

    /// Replaces the mapping after validating it, pinning each property's current type.
    pub async fn set_field_mapping(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        mut new: FieldMapping,
    ) -> AdminResult<Connection> {
        for entry in &mut new.entries {
            entry.source_type = None;
        }
        let problems = self.validate_field_mapping(tenant, id, &new).await?;
        if !problems.is_empty() {
            return Err(AdminError::InvalidMapping(problems));
        }
        let connection = self.admin_connection(tenant, id).await?;
        for entry in &mut new.entries {
            let schema = self.schema(&connection, entry.object).await?;
            entry.source_type = schema
                .get(&entry.source_property)
                .map(|p| p.property_type.clone());
        }
        self.update_connection(tenant, id, |c| {
            c.field_mapping = new.clone();
            true
        })
        .await?
        .ok_or(AdminError::NotFound("connection"))
    }

    /// The lists, lifecycle stages and pipelines the connection's account offers.
    pub async fn company_filter_choices(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<FilterChoices> {
        let connection = self.admin_connection(tenant, id).await?;
        let provider = self.provider(connection.provider)?;
        Ok(provider
            .filter_choices(&connection)
            .await
            .map_err(EngineError::from)?)
    }

    /// Refuses a filter of the wrong shape, or naming a list, stage or pipeline the
    /// connection's account does not have, each one named.
    async fn check_company_filter(
        &self,
        connection: &Connection,
        filter: &CompanyFilter,
    ) -> AdminResult<()> {
        let mut problems = filter.shape_problems();
        if problems.is_empty() && *filter != CompanyFilter::All {
            if connection.provider != Provider::Hubspot {
                problems.push(format!(
                    "{} connections take no company filter",
                    connection.provider
                ));
            } else {
                let choices = self
                    .provider(connection.provider)?
                    .filter_choices(connection)
                    .await
                    .map_err(EngineError::from)?;
                problems = filter.unknown_names(&choices);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AdminError::InvalidFilter(problems))
        }
    }

    /// How many of the account's companies `filter` would keep, counted at the provider
    /// before the admin saves it: the companies are listed page by page (at most
    /// [`FILTER_PREVIEW_MAX`]) and each page asked about membership, as a pass does.
    pub async fn preview_company_filter(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        filter: CompanyFilter,
    ) -> AdminResult<FilterPreview> {
        let mut connection = self.admin_connection(tenant, id).await?;
        if !connection.accepts_jobs() {
            return Err(AdminError::NotConnected);
        }
        self.check_company_filter(&connection, &filter).await?;
        connection.company_filter = filter;
        let provider = self.provider(connection.provider)?;
        let mut preview = FilterPreview {
            kept: 0,
            read: 0,
            complete: false,
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = provider
                .list_page(&connection, ObjectKind::Company, &[], cursor.as_deref())
                .await
                .map_err(EngineError::from)?;
            let ids: Vec<SourceId> = page.records.into_iter().map(|r| r.id).collect();
            let members = provider
                .filter_members(&connection, &ids)
                .await
                .map_err(EngineError::from)?;
            preview.read += ids.len() as u64;
            preview.kept += members.values().filter(|member| **member).count() as u64;
            cursor = page.next_cursor;
            if cursor.is_none() {
                preview.complete = true;
                return Ok(preview);
            }
            if preview.read >= FILTER_PREVIEW_MAX {
                return Ok(preview);
            }
        }
    }

    /// Changes the company filter and starts a full pass, which mirrors what entered the
    /// filter and archives what left it (within the mass-archive guard). A filter naming a
    /// list, stage or pipeline the account does not have is refused, each one named.
    pub async fn set_company_filter(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        filter: CompanyFilter,
    ) -> AdminResult<(Connection, Option<SyncRun>)> {
        let connection = self.admin_connection(tenant, id).await?;
        self.check_company_filter(&connection, &filter).await?;
        let stored = self
            .update_connection(tenant, id, |c| {
                c.company_filter = filter.clone();
                c.flags.filter_invalid_at = None;
                true
            })
            .await?
            .ok_or(AdminError::NotFound("connection"))?;
        let run = match self
            .start_sync(&stored, SyncTrigger::FilterChange, false)
            .await
        {
            Ok(run) => Some(run),
            Err(
                StartError::NotConnected | StartError::OutboundOnly | StartError::AlreadyRunning(_),
            ) => None,
            Err(StartError::Engine(e)) => return Err(e.into()),
        };
        Ok((stored, run))
    }

    /// Approves the archives the guard held: a new pass archives what is gone now.
    pub async fn approve_held_archives(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<SyncRun> {
        let connection = self.admin_connection(tenant, id).await?;
        if !connection.flags.archives_held {
            return Err(AdminError::Conflict(
                "no archives are held for this connection".into(),
            ));
        }
        let run = self
            .start_sync(&connection, SyncTrigger::Manual, true)
            .await?;
        self.update_connection(tenant, id, |c| {
            c.flags.archives_held = false;
            true
        })
        .await?;
        Ok(run)
    }

    /// Rejects the held archives: nothing is archived; the next pass asks again if the
    /// records are still gone.
    pub async fn reject_held_archives(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
    ) -> AdminResult<Connection> {
        let connection = self.admin_connection(tenant, id).await?;
        if !connection.flags.archives_held {
            return Err(AdminError::Conflict(
                "no archives are held for this connection".into(),
            ));
        }
        let stored = self
            .update_connection(tenant, id, |c| {
                c.flags.archives_held = false;
                true
            })
            .await?
            .ok_or(AdminError::NotFound("connection"))?;
        let mut entry = LogEntry::new(
            tenant.clone(),
            id.clone(),
            stored.provider,
            LogStatus::Unchanged,
            Timestamp::now(),
        );
        entry.message = Some("the admin rejected the held archives: nothing was archived".into());
        self.log(entry).await;
        Ok(stored)
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied => "applied".into(),
        Outcome::Restored => "restored".into(),
        Outcome::Unchanged => "unchanged".into(),
        Outcome::Archived => "archived".into(),
        Outcome::Skipped => "skipped".into(),
        Outcome::Held(id) => format!("held for pending match {id}"),
        Outcome::Waiting(id) => format!("still waiting for pending match {id}"),
        Outcome::Unmatched(id) => format!("unmatched, listed for the admin ({id})"),
        Outcome::Cleared => "billing cleared (deleted at the provider)".into(),
        Outcome::Pushed(_) => "applied; our newer values are being pushed back".into(),
    }
}

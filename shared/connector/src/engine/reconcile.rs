//! The reconciler: a full pass over a connection, in phases, checkpointed after every page
//! so a pass of any size continues across invocations. It lists everything (applying what
//! changed), then re-checks at the provider the mirrored records the listing did not show
//! (archiving what vanished or left the filter; `listed`), with the mass-archive guard in
//! front of company archives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::apply::{self, Applied, ApplyContext, Outcome};
use super::listed::Listed;
use super::{Engine, EngineError};
use crate::model::{
    ArchiveReason, Checkpoint, Connection, ConnectionStatus, Job, JobCause, JobKind, LogEntry,
    LogStatus, ObjectKind, PendingArchive, Phase, Provider, SourceId, SourceVersion, SyncCounters,
    SyncRun, SyncRunId, SyncRunStatus, SyncTrigger, Timestamp,
};
use crate::ports::{OutgoingMessage, PageRequest, StoreError};
use crate::provider::{Fetched, SourceRecord};

/// A run whose checkpoint has not moved for this long is presumed dead, and a new one may start.
pub const STALE_RUN_AFTER: Duration = Duration::from_secs(20 * 60);

/// How long a run's pending archives are kept: far longer than any pass runs.
/// Link pages one check step walks at most while gathering records to read again: an
/// unchanged pass checks 5,000 links a step.
const MAX_LINK_PAGES_PER_CHECK: usize = 50;
pub(super) const PENDING_ARCHIVES_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The record kinds a pass over one provider covers, in order (companies before the
/// contacts that attach to them).
pub fn kinds_of(provider: Provider) -> &'static [ObjectKind] {
    match provider {
        Provider::Hubspot => &[ObjectKind::Company, ObjectKind::Contact],
        Provider::Stripe => &[ObjectKind::BillingCustomer],
    }
}

impl Phase {
    pub fn first(provider: Provider) -> Self {
        kinds_of(provider)
            .first()
            .map_or(Phase::Done, |k| Phase::List(*k))
    }

    fn after(self, provider: Provider) -> Self {
        let kinds = kinds_of(provider);
        let next_kind = |k: ObjectKind| kinds.iter().skip_while(|x| **x != k).nth(1).copied();
        match self {
            Phase::List(k) => match next_kind(k) {
                Some(n) => Phase::List(n),
                None => kinds.first().map_or(Phase::Done, |f| Phase::Check(*f)),
            },
            Phase::Check(k) => match next_kind(k) {
                Some(n) => Phase::Check(n),
                None if kinds.contains(&ObjectKind::Company) => Phase::ArchiveCompanies,
                None => Phase::Done,
            },
            Phase::ArchiveCompanies | Phase::Done => Phase::Done,
        }
    }
}

/// How much one invocation may do before it checkpoints and hands over.
#[derive(Clone, Debug)]
pub struct Budget {
    deadline: Option<Instant>,
    max_pages: Option<u32>,
    /// Set when the process is asked to stop (a server's SIGTERM): the pass checkpoints at
    /// the next page and sends its continuation, as at a deadline.
    stop: Option<Arc<AtomicBool>>,
}

impl Budget {
    pub fn unbounded() -> Self {
        Self {
            deadline: None,
            max_pages: None,
            stop: None,
        }
    }

    /// Stop before `deadline` (the Lambda's, less a margin for the checkpoint).
    pub fn until(deadline: Instant) -> Self {
        Self {
            deadline: Some(deadline),
            max_pages: None,
            stop: None,
        }
    }

    /// Stop after this many pages (tests, and a cap on a single invocation's work).
    pub fn pages(max_pages: u32) -> Self {
        Self {
            deadline: None,
            max_pages: Some(max_pages),
            stop: None,
        }
    }

    /// Also stop, checkpointed, once `stop` is set.
    pub fn or_when_set(self, stop: Arc<AtomicBool>) -> Self {
        Self {
            stop: Some(stop),
            ..self
        }
    }

    fn exhausted(&self, pages_done: u32) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
            || self.max_pages.is_some_and(|m| pages_done >= m)
            || self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// The pass is complete.
    Completed(SyncCounters),
    /// Checkpointed; a continuation job was sent.
    Continued,
    /// The run was already finished, superseded, or its connection cannot sync.
    Stopped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a sync of this connection is already running (run {0})")]
    AlreadyRunning(SyncRunId),
    #[error("the connection is not connected")]
    NotConnected,
    /// An outbound connection mirrors nothing: it has no passes.
    #[error("the connection is outbound only: it pushes and mirrors nothing")]
    OutboundOnly,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        StartError::Engine(e.into())
    }
}

impl Engine {
    /// Starts a full pass: records the run and sends its first reconcile job.
    pub async fn start_sync(
        &self,
        connection: &Connection,
        trigger: SyncTrigger,
        approved_archives: bool,
    ) -> Result<SyncRun, StartError> {
        if connection.status != ConnectionStatus::Connected {
            return Err(StartError::NotConnected);
        }
        if !connection.pulls() {
            return Err(StartError::OutboundOnly);
        }
        let now = Timestamp::now();
        let mut run = SyncRun::start(
            connection.tenant_id.clone(),
            connection.id.clone(),
            trigger,
            now,
        );
        // One pass per connection, whatever triggers it: the lease is a conditional write,
        // so Run sync now racing the nightly fan-out starts one pass, not two.
        let mut holder = self.renew_lease(connection, &run.id).await?;
        if holder != run.id && self.holds_a_dead_lease(connection, &holder).await? {
            // A pass that died between its lease and its first write (or between its last
            // write and the release) would block every start until the lease lapses.
            tracing::warn!(connection = %connection.id, %holder, "a lease held by no running pass: released");
            self.store
                .release_pass(&connection.tenant_id, &connection.id, &holder)
                .await?;
            holder = self.renew_lease(connection, &run.id).await?;
        }
        if holder != run.id {
            return Err(StartError::AlreadyRunning(holder));
        }
        run.checkpoint = Checkpoint {
            phase: Phase::first(connection.provider),
            approved: approved_archives,
            heartbeat: Some(now),
            ..Checkpoint::default()
        };
        let started = async {
            let run = self.store.put_sync_run(&run).await?;
            self.send_reconcile_job(connection, &run.id, Duration::ZERO)
                .await?;
            Ok::<_, EngineError>(run)
        }
        .await;
        if started.is_err() {
            // The pass never began: its lease must not block the next try for 20 minutes.
            let released = self
                .store
                .release_pass(&connection.tenant_id, &connection.id, &run.id)
                .await;
            if let Err(e) = released {
                tracing::warn!(error = %e, run = %run.id, "could not release the lease of a pass that did not start");
            }
        }
        Ok(started?)
    }

    /// Whether `holder`'s lease belongs to no running pass: the run has ended, or it was
    /// never written and the lease is past [`EngineSettings::unwritten_run_grace`] (a start
    /// racing this one may be about to write it).
    ///
    /// [`EngineSettings::unwritten_run_grace`]: super::EngineSettings::unwritten_run_grace
    async fn holds_a_dead_lease(
        &self,
        connection: &Connection,
        holder: &SyncRunId,
    ) -> Result<bool, EngineError> {
        let run = self
            .store
            .get_sync_run(&connection.tenant_id, &connection.id, holder)
            .await?;
        Ok(match run {
            Some(run) => run.status != SyncRunStatus::Running,
            None => {
                let grace = self.settings.unwritten_run_grace;
                grace.is_zero()
                    || holder
                        .created_at()
                        .is_some_and(|at| Timestamp::now().since(at) >= grace)
            }
        })
    }

    /// Claims or renews `run`'s lease on its connection's pass; returns the holder.
    async fn renew_lease(
        &self,
        connection: &Connection,
        run: &SyncRunId,
    ) -> Result<SyncRunId, EngineError> {
        let now = Timestamp::now();
        Ok(self
            .store
            .claim_pass(
                &connection.tenant_id,
                &connection.id,
                run,
                now.plus(STALE_RUN_AFTER),
                now,
            )
            .await?)
    }

    async fn send_reconcile_job(
        &self,
        connection: &Connection,
        run: &SyncRunId,
        delay: Duration,
    ) -> Result<(), EngineError> {
        let job = Job::new(
            connection.tenant_id.clone(),
            connection.id.clone(),
            connection.provider,
            JobKind::Reconcile {
                run_id: run.clone(),
            },
            Timestamp::now(),
        );
        self.reconcile_jobs
            .send_batch(&[OutgoingMessage::delayed(job.to_body(), delay)])
            .await?;
        Ok(())
    }

    /// Runs one reconcile job within `budget`.
    pub async fn continue_reconcile_job(
        &self,
        job: &Job,
        budget: Budget,
    ) -> Result<StepResult, EngineError> {
        let JobKind::Reconcile { run_id } = &job.kind else {
            return Ok(StepResult::Stopped("not a reconcile job".into()));
        };
        self.reconcile_step(&job.tenant_id, &job.connection_id, run_id, budget)
            .await
    }

    pub async fn reconcile_step(
        &self,
        tenant: &crate::model::TenantId,
        connection_id: &crate::model::ConnectionId,
        run_id: &SyncRunId,
        budget: Budget,
    ) -> Result<StepResult, EngineError> {
        let Some(mut run) = self
            .store
            .get_sync_run(tenant, connection_id, run_id)
            .await?
        else {
            return Ok(StepResult::Stopped(format!("run {run_id} does not exist")));
        };
        if run.status != SyncRunStatus::Running {
            return Ok(StepResult::Stopped(format!(
                "run {run_id} is already {:?}",
                run.status
            )));
        }
        let Some(connection) = self.store.get_connection(tenant, connection_id).await? else {
            return self.finish(run, SyncRunStatus::Failed).await;
        };
        if !connection.accepts_jobs() || !connection.pulls() {
            return self.finish(run, SyncRunStatus::Failed).await;
        }
        let holder = self.renew_lease(&connection, &run.id).await?;
        if holder != run.id {
            // Its lease lapsed and another pass took over: this one stops for good.
            tracing::warn!(run = %run.id, %holder, "a newer pass holds the connection: this one ends");
            return self.finish(run, SyncRunStatus::Failed).await;
        }
        run.invocations += 1;
        let mut checkpoint = run.checkpoint.clone();
        let mut listed = Listed::resume(tenant, connection_id, &run.id, &mut checkpoint);
        let mut pages = 0;
        while checkpoint.phase != Phase::Done {
            // At least one page per invocation, so even a spent budget makes progress.
            if pages > 0 && budget.exhausted(pages) {
                return self
                    .hand_over(run, checkpoint, &connection, Duration::ZERO, &mut listed)
                    .await;
            }
            // A failed page is redone from where it began: what it counted is dropped, so
            // the guard's tallies and the ledger count each record once.
            let before = (run.clone(), checkpoint.clone());
            let step = self
                .one_page(&connection, &mut run, &mut checkpoint, &mut listed)
                .await;
            self.persist_rotated_credentials(&connection).await?;
            if let Err(e) = step {
                let (run, checkpoint) = before;
                return self
                    .page_failed(run, checkpoint, &connection, e, &mut listed)
                    .await;
            }
            pages += 1;
            checkpoint.heartbeat = Some(Timestamp::now());
            run.checkpoint = checkpoint.clone();
            run = match self.store.put_sync_run(&run).await {
                Ok(stored) => stored,
                Err(StoreError::VersionConflict { .. }) => {
                    return Ok(StepResult::Stopped(
                        "another invocation is running this pass".into(),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
        }
        let counters = run.counters;
        self.finish_completed(run, &connection, &checkpoint).await?;
        Ok(StepResult::Completed(counters))
    }

    async fn hand_over(
        &self,
        mut run: SyncRun,
        mut checkpoint: Checkpoint,
        connection: &Connection,
        delay: Duration,
        listed: &mut Listed,
    ) -> Result<StepResult, EngineError> {
        listed.save(self.store.as_ref(), &mut checkpoint).await?;
        run.checkpoint = checkpoint;
        if self.renew_lease(connection, &run.id).await? != run.id {
            return self.finish(run, SyncRunStatus::Failed).await;
        }
        match self.store.put_sync_run(&run).await {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => {
                return Ok(StepResult::Stopped(
                    "another invocation is running this pass".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.send_reconcile_job(connection, &run.id, delay).await?;
        Ok(StepResult::Continued)
    }

    /// A page failed at the provider. Transient failures checkpoint and continue later; a
    /// revoked token stops the run and the connection's jobs.
    async fn page_failed(
        &self,
        mut run: SyncRun,
        checkpoint: Checkpoint,
        connection: &Connection,
        error: EngineError,
        listed: &mut Listed,
    ) -> Result<StepResult, EngineError> {
        let code = error.code();
        if code.is_busy_or_down() {
            let delay = error
                .retry_after()
                .unwrap_or(Duration::from_secs(30))
                .min(crate::ports::MAX_DELAY);
            tracing::warn!(run = %run.id, %code, ?delay, "reconcile page failed; continuing later");
            let handed = self
                .hand_over(run, checkpoint, connection, delay, listed)
                .await;
            // A pass that keeps failing here stops moving: that is what a review sees.
            self.review_connection_notifications(&connection.tenant_id, &connection.id)
                .await;
            return handed;
        }
        self.apply_refusal(connection, code, error.missing_scopes())
            .await?;
        let mut entry = LogEntry::new(
            connection.tenant_id.clone(),
            connection.id.clone(),
            connection.provider,
            LogStatus::Failed,
            Timestamp::now(),
        );
        entry.error_code = Some(code);
        entry.message = Some(format!("full sync {}: {error}", run.id));
        entry.provider_response = error.logged_response();
        self.log(entry).await;
        run.error_code = Some(code);
        self.finish(run, SyncRunStatus::Failed).await
    }

    async fn finish(
        &self,
        mut run: SyncRun,
        status: SyncRunStatus,
    ) -> Result<StepResult, EngineError> {
        run.status = status;
        run.finished_at = Some(Timestamp::now());
        match self.store.put_sync_run(&run).await {
            Ok(_) | Err(StoreError::VersionConflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store
            .release_pass(&run.tenant_id, &run.connection_id, &run.id)
            .await?;
        self.review_connection_notifications(&run.tenant_id, &run.connection_id)
            .await;
        Ok(StepResult::Stopped(format!(
            "run {} ended {:?}",
            run.id, status
        )))
    }

    async fn finish_completed(
        &self,
        mut run: SyncRun,
        connection: &Connection,
        checkpoint: &Checkpoint,
    ) -> Result<(), EngineError> {
        let now = Timestamp::now();
        run.status = SyncRunStatus::Completed;
        run.finished_at = Some(now);
        // The connection first: whoever sees the run completed also sees its held flag.
        let held = checkpoint.held > 0;
        self.update_connection(&connection.tenant_id, &connection.id, |c| {
            c.last_full_sync = Some(now);
            c.flags.archives_held = held;
            true
        })
        .await?;
        self.store.put_sync_run(&run).await?;
        self.store
            .release_pass(&run.tenant_id, &run.connection_id, &run.id)
            .await?;
        self.review_connection_notifications(&run.tenant_id, &run.connection_id)
            .await;
        tracing::info!(run = %run.id, counters = ?run.counters, "full sync completed");
        Ok(())
    }

    /// One page of the current phase; moves the phase on when it runs out.
    async fn one_page(
        &self,
        connection: &Connection,
        run: &mut SyncRun,
        cp: &mut Checkpoint,
        listed: &mut Listed,
    ) -> Result<(), EngineError> {
        match cp.phase {
            Phase::List(kind) => {
                self.list_page(connection, run, cp, listed, kind).await?;
                if run.cursor.is_none() {
                    cp.phase = cp.phase.after(connection.provider);
                }
            }
            Phase::Check(kind) => {
                self.check_page(connection, run, cp, listed, kind).await?;
                if run.cursor.is_none() {
                    cp.phase = cp.phase.after(connection.provider);
                }
            }
            Phase::ArchiveCompanies => {
                self.archive_page(connection, run, cp).await?;
            }
            Phase::Done => {}
        }
        Ok(())
    }

    fn apply_context<'a>(
        &'a self,
        connection: &'a Connection,
        schema: &'a super::mapping::Schema,
    ) -> ApplyContext<'a> {
        ApplyContext {
            store: self.store.as_ref(),
            connection,
            schema,
            currency: self.settings.arr_currency,
            now: Timestamp::now(),
        }
    }

    async fn list_page(
        &self,
        connection: &Connection,
        run: &mut SyncRun,
        cp: &mut Checkpoint,
        listed: &mut Listed,
        kind: ObjectKind,
    ) -> Result<(), EngineError> {
        if run.cursor.is_none() {
            listed.start(cp, kind);
        }
        let provider = self.provider(connection.provider)?;
        let schema = self.schema(connection, kind).await?;
        let properties = connection.properties_to_read(kind);
        let page = provider
            .list_page(connection, kind, &properties, run.cursor.as_deref())
            .await?;
        let members = if kind == ObjectKind::Company && !page.records.is_empty() {
            let ids: Vec<SourceId> = page.records.iter().map(|r| r.id.clone()).collect();
            provider.filter_members(connection, &ids).await?
        } else {
            Default::default()
        };
        let ctx = self.apply_context(connection, &schema);
        let in_filter = |record: &SourceRecord| {
            kind != ObjectKind::Company || members.get(&record.id).copied().unwrap_or(false)
        };
        for record in &page.records {
            let started = Instant::now();
            let result = if in_filter(record) {
                apply::apply_record(&ctx, record, true).await
            } else {
                // A mirrored company outside the filter is archived by the check phase,
                // under the mass-archive guard like any other archive.
                Ok(Applied::new(Outcome::Skipped, None))
            };
            self.count(
                connection,
                run,
                kind,
                &record.id,
                Some(record),
                result,
                started,
            )
            .await?;
        }
        // Only what the filter holds counts as shown: a mirrored company outside it is read
        // again by the check phase, which archives it.
        listed.saw(
            cp,
            kind,
            page.records.iter().filter(|r| in_filter(r)).map(|r| &r.id),
        );
        run.cursor = page.next_cursor;
        Ok(())
    }

    /// Re-checks at the provider the mirrored records of one page of links that the
    /// listing did not show.
    async fn check_page(
        &self,
        connection: &Connection,
        run: &mut SyncRun,
        cp: &mut Checkpoint,
        listed: &mut Listed,
        kind: ObjectKind,
    ) -> Result<(), EngineError> {
        let provider = self.provider(connection.provider)?;
        let (unshown, next) = self
            .unshown_links(connection, run, cp, listed, kind)
            .await?;
        if !unshown.is_empty() {
            let properties = connection.properties_to_read(kind);
            let fetched = provider
                .recheck(connection, kind, &unshown, &properties)
                .await?;
            let found: Vec<SourceId> = fetched
                .iter()
                .filter_map(|(_, f)| match f {
                    Fetched::Found(r) if !r.archived => Some(r.id.clone()),
                    _ => None,
                })
                .collect();
            let members = if kind == ObjectKind::Company && !found.is_empty() {
                provider.filter_members(connection, &found).await?
            } else {
                Default::default()
            };
            let schema = self.schema(connection, kind).await?;
            let ctx = self.apply_context(connection, &schema);
            let mut pending = Vec::new();
            for (asked, outcome) in fetched {
                let vanished = match &outcome {
                    Fetched::Gone => Some(ArchiveReason::SourceDeleted),
                    Fetched::Found(r) if r.archived => Some(ArchiveReason::SourceDeleted),
                    Fetched::Found(r)
                        if kind == ObjectKind::Company
                            && !members.get(&r.id).copied().unwrap_or(false) =>
                    {
                        Some(ArchiveReason::LeftFilter)
                    }
                    Fetched::Found(_) => None,
                };
                let started = Instant::now();
                match (vanished, outcome) {
                    (Some(reason), _) if kind == ObjectKind::Company && !cp.approved => {
                        cp.vanished_companies += 1;
                        pending.push(PendingArchive {
                            source_id: asked,
                            reason,
                        });
                    }
                    (Some(reason), outcome) => {
                        let seen = match &outcome {
                            Fetched::Found(r) => r.version,
                            Fetched::Gone => apply::seen_gone_at(ctx.now),
                        };
                        let result = apply::apply_gone(&ctx, kind, &asked, reason, seen).await;
                        self.count(connection, run, kind, &asked, None, result, started)
                            .await?;
                    }
                    // Merged away at the provider: the survivor takes over the link.
                    (None, Fetched::Found(record)) if record.id != asked => {
                        let record = apply::answering_for(&asked, record);
                        let result = apply::apply_record(&ctx, &record, true).await;
                        self.count(
                            connection,
                            run,
                            kind,
                            &record.id,
                            Some(&record),
                            result,
                            started,
                        )
                        .await?;
                    }
                    (None, _) => {}
                }
            }
            if !pending.is_empty() {
                self.store
                    .put_pending_archives(
                        &connection.tenant_id,
                        &connection.id,
                        &run.id,
                        &pending,
                        ctx.now.plus(PENDING_ARCHIVES_KEPT),
                    )
                    .await?;
            }
        }
        run.cursor = next;
        Ok(())
    }

    /// The mirrored records the listing did not show, from the links after the run's
    /// cursor: link pages are walked until a batch read's worth is gathered, so scattered
    /// deletions still cost one read per 100. Returns them and the cursor after the
    /// last page walked.
    async fn unshown_links(
        &self,
        connection: &Connection,
        run: &SyncRun,
        cp: &mut Checkpoint,
        listed: &mut Listed,
        kind: ObjectKind,
    ) -> Result<(Vec<SourceId>, Option<String>), EngineError> {
        let account = super::account_of(connection)?;
        let mut unshown = Vec::new();
        let mut cursor = run.cursor.clone();
        for _ in 0..MAX_LINK_PAGES_PER_CHECK {
            // By account, not connection: links written through an earlier connection to
            // the same account are this pass's too.
            let links = self
                .store
                .list_links(
                    &connection.tenant_id,
                    connection.provider,
                    account,
                    kind,
                    PageRequest {
                        limit: self.settings.page_size,
                        cursor: cursor.clone(),
                    },
                )
                .await?;
            for link in links.items.into_iter().filter(|l| !l.source_gone) {
                if kind == ObjectKind::Company {
                    cp.active_companies += 1;
                }
                if !listed
                    .showed(self.store.as_ref(), cp, kind, &link.source_id)
                    .await?
                {
                    unshown.push(link.source_id);
                }
            }
            cursor = links.next;
            if cursor.is_none() || unshown.len() >= self.settings.page_size {
                break;
            }
        }
        Ok((unshown, cursor))
    }

    /// After the checks: the guard's verdict on the vanished companies, then their archives.
    async fn archive_page(
        &self,
        connection: &Connection,
        run: &mut SyncRun,
        cp: &mut Checkpoint,
    ) -> Result<(), EngineError> {
        let share = self.settings.mass_archive_share;
        let allowed = ((cp.active_companies as f64) * share).floor() as u64;
        let over = cp.vanished_companies > allowed.max(self.settings.mass_archive_floor);
        if over && !cp.approved {
            cp.held = cp.vanished_companies;
            cp.phase = Phase::Done;
            let mut entry = LogEntry::new(
                connection.tenant_id.clone(),
                connection.id.clone(),
                connection.provider,
                LogStatus::Held,
                Timestamp::now(),
            );
            entry.message = Some(format!(
                "full sync {} would archive {} of {} customers (more than {:.0}%): archives held for an admin to approve or reject",
                run.id,
                cp.held,
                cp.active_companies,
                share * 100.0
            ));
            self.log(entry).await;
            return Ok(());
        }
        let schema = super::mapping::Schema::default();
        let ctx = self.apply_context(connection, &schema);
        let pending = self
            .store
            .list_pending_archives(
                &connection.tenant_id,
                &connection.id,
                &run.id,
                PageRequest {
                    limit: self.settings.page_size,
                    cursor: run.cursor.clone(),
                },
                ctx.now,
            )
            .await?;
        // The cursor and phase move only once the page is done: a failed page is redone.
        let next = pending.next;
        let page_done = |run: &mut SyncRun, cp: &mut Checkpoint| {
            if next.is_none() {
                cp.phase = Phase::Done;
            }
            run.cursor = next.clone();
        };
        if pending.items.is_empty() {
            page_done(run, cp);
            return Ok(());
        }
        let ids: Vec<SourceId> = pending.items.into_iter().map(|a| a.source_id).collect();
        // The archives waited for the guard and for every page before them: each company
        // is read again, so one restored (or back in the filter) meanwhile stays.
        let provider = self.provider(connection.provider)?;
        let properties = connection.properties_to_read(ObjectKind::Company);
        let fresh = provider
            .recheck(connection, ObjectKind::Company, &ids, &properties)
            .await?;
        let alive: Vec<SourceId> = fresh
            .iter()
            .filter_map(|(_, f)| match f {
                Fetched::Found(r) if !r.archived => Some(r.id.clone()),
                _ => None,
            })
            .collect();
        let members = if alive.is_empty() {
            Default::default()
        } else {
            provider.filter_members(connection, &alive).await?
        };
        for (source_id, outcome) in fresh {
            let (reason, seen) = match outcome {
                Fetched::Gone => (ArchiveReason::SourceDeleted, apply::seen_gone_at(ctx.now)),
                Fetched::Found(r) if r.archived => (ArchiveReason::SourceDeleted, r.version),
                Fetched::Found(r) if !members.get(&r.id).copied().unwrap_or(false) => {
                    (ArchiveReason::LeftFilter, r.version)
                }
                Fetched::Found(_) => continue,
            };
            let started = Instant::now();
            let result = apply::archive(&ctx, ObjectKind::Company, &source_id, reason, seen).await;
            self.count(
                connection,
                run,
                ObjectKind::Company,
                &source_id,
                None,
                result,
                started,
            )
            .await?;
        }
        page_done(run, cp);
        Ok(())
    }

    /// Books one record into the run's ledger and the log.
    #[allow(clippy::too_many_arguments)]
    async fn count(
        &self,
        connection: &Connection,
        run: &mut SyncRun,
        kind: ObjectKind,
        source_id: &SourceId,
        record: Option<&SourceRecord>,
        result: Result<Applied, EngineError>,
        started: Instant,
    ) -> Result<(), EngineError> {
        let job = Job::new(
            connection.tenant_id.clone(),
            connection.id.clone(),
            connection.provider,
            JobKind::SyncRecord {
                object: kind,
                source_id: source_id.clone(),
                cause: JobCause::Reconcile {
                    run_id: run.id.clone(),
                },
            },
            Timestamp::now(),
        );
        let c = &mut run.counters;
        c.seen += 1;
        let changed = match &result {
            Ok(applied) => match applied.outcome {
                Outcome::Applied | Outcome::Restored => {
                    c.applied += 1;
                    true
                }
                Outcome::Pushed(_) => {
                    c.pushed += 1;
                    true
                }
                Outcome::Archived | Outcome::Cleared => {
                    c.archived += 1;
                    true
                }
                Outcome::Unchanged | Outcome::Skipped => {
                    c.unchanged += 1;
                    false
                }
                Outcome::Held(_) | Outcome::Waiting(_) | Outcome::Unmatched(_) => {
                    c.held += 1;
                    false
                }
            },
            Err(_) => {
                c.failed += 1;
                false
            }
        };
        if changed
            && !matches!(
                run.trigger,
                SyncTrigger::Initial | SyncTrigger::FilterChange
            )
        {
            let cutoff = run.started_at.minus(self.settings.webhook_miss_grace);
            // Billing records carry no modification time (their version is when they were
            // read), so every billing change a pass finds counts as missed.
            let old_enough = record.is_none_or(|r| {
                r.kind == ObjectKind::BillingCustomer
                    || r.version < SourceVersion(cutoff.as_millis())
            });
            if old_enough {
                c.webhook_misses += 1;
            }
        }
        match result {
            Ok(applied) => {
                self.record_outcome(
                    connection,
                    &job,
                    kind,
                    source_id,
                    &applied,
                    started.elapsed(),
                )
                .await;
                self.push_back(connection, &applied).await?;
            }
            Err(error) => {
                let mut entry = LogEntry::new(
                    connection.tenant_id.clone(),
                    connection.id.clone(),
                    connection.provider,
                    LogStatus::Failed,
                    Timestamp::now(),
                );
                entry.object_kind = Some(kind);
                entry.record_id = Some(source_id.clone());
                entry.error_code = Some(error.code());
                entry.message = Some(error.to_string());
                entry.retry_job = Some(job);
                self.log(entry).await;
            }
        }
        Ok(())
    }
}

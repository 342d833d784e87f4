//! The record worker: one job = one record, fetched fresh, mapped, matched and applied.
//! The jobs of one connection and kind in a batch share their fetch. Failures follow the
//! retry policy; the last one becomes a log row with a Retry action.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::apply::{self, Applied, ApplyContext, Outcome};
use super::{Engine, EngineError};
use crate::model::{
    ArchiveReason, Connection, ErrorCode, Job, JobCause, JobKind, LogEntry, LogStatus, ObjectKind,
    SourceId, Timestamp,
};
use crate::ports::{OutgoingMessage, StoreError};
use crate::provider::Fetched;

/// What the queue adapter does with the message once the job has run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Finished (applied, unchanged, logged as failed, or dropped): delete the message.
    Done,
    /// Send this job again after `delay`, then delete the message.
    Retry { job: Job, delay: Duration },
}

impl Engine {
    /// Runs one job. An `Err` means the job could not even be judged (the store is down):
    /// the message should be left for the queue to deliver again.
    pub async fn run_job(&self, job: Job) -> Result<Disposition, EngineError> {
        let mut results = self.run_jobs(std::slice::from_ref(&job)).await;
        results.pop().unwrap_or(Ok(Disposition::Done))
    }

    /// Runs the record jobs of one batch, one result per job in order. Jobs of the same
    /// connection and record kind share one fetch of all their records and one filter
    /// read (a burst of webhooks costs a batch read per 100 records, not a read each);
    /// each job then gets its own outcome, retry and log row, in order, exactly as if it
    /// had run alone. A shared fetch refused for a reason other than rate or outage is
    /// tried again record by record, so one bad record still fails alone.
    pub async fn run_jobs(&self, jobs: &[Job]) -> Vec<Result<Disposition, EngineError>> {
        let mut results: Vec<Option<Result<Disposition, EngineError>>> =
            jobs.iter().map(|_| None).collect();
        for (key, members) in grouped(jobs) {
            let group: Vec<&Job> = members.iter().map(|&i| &jobs[i]).collect();
            let outcomes = match key {
                Some(kind) => self.run_group(kind, &group).await,
                None => {
                    let mut outcomes = Vec::new();
                    for job in group {
                        outcomes.push(self.run_other(job).await);
                    }
                    outcomes
                }
            };
            for (i, outcome) in members.into_iter().zip(outcomes) {
                results[i] = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Ok(Disposition::Done)))
            .collect()
    }

    /// A job that shares no fetch: a push runs alone; reconcile jobs belong on their
    /// own queue.
    async fn run_other(&self, job: &Job) -> Result<Disposition, EngineError> {
        if matches!(job.kind, JobKind::PushContact { .. }) {
            return self.run_push(job).await;
        }
        tracing::warn!(job = %job.id, "a reconcile job reached the record queue: moved to the reconcile queue");
        self.reconcile_jobs
            .send_batch(&[OutgoingMessage::now(job.to_body())])
            .await?;
        Ok(Disposition::Done)
    }

    /// Record jobs of one tenant, connection and kind.
    async fn run_group(
        &self,
        kind: ObjectKind,
        jobs: &[&Job],
    ) -> Vec<Result<Disposition, EngineError>> {
        let Some(first) = jobs.first() else {
            return Vec::new();
        };
        let connection = match self
            .store
            .get_connection(&first.tenant_id, &first.connection_id)
            .await
        {
            Ok(Some(connection)) if connection.accepts_jobs() && connection.pulls() => connection,
            Ok(found) => {
                let status = found.map(|c| c.status);
                tracing::info!(connection = %first.connection_id, ?status, jobs = jobs.len(), "connection gone or not accepting jobs: dropped");
                return jobs.iter().map(|_| Ok(Disposition::Done)).collect();
            }
            Err(e) => {
                let e = EngineError::from(e);
                return jobs.iter().map(|_| Err(shared_failure(&e))).collect();
            }
        };
        self.run_fetched(&connection, kind, jobs).await
    }

    /// Record jobs of one connection and kind: one fetch, then each job applied and booked.
    async fn run_fetched(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        jobs: &[&Job],
    ) -> Vec<Result<Disposition, EngineError>> {
        let ids: Vec<SourceId> = jobs.iter().filter_map(|j| record_id(j).cloned()).collect();
        let started = Instant::now();
        let fetched = self.fetch_records(connection, kind, &ids).await;
        let fetch_took = started.elapsed();
        let fetch = match fetched {
            Ok(fetch) => Ok(fetch),
            Err(EngineError::Provider(e)) if jobs.len() > 1 && !e.code.is_busy_or_down() => {
                tracing::info!(code = %e.code, jobs = jobs.len(), "the shared fetch was refused: each record on its own");
                let mut results = Vec::new();
                for job in jobs {
                    let alone = self.run_fetched(connection, kind, std::slice::from_ref(job));
                    results.extend(Box::pin(alone).await);
                }
                return results;
            }
            Err(e) => Err(e),
        };
        let mut applied = Vec::new();
        for job in jobs {
            let Some(source_id) = record_id(job) else {
                applied.push(None);
                continue;
            };
            let started = Instant::now();
            let result = match &fetch {
                Ok(fetch) => self.apply_fetched(connection, kind, source_id, fetch).await,
                Err(e) => Err(shared_failure(e)),
            };
            applied.push(Some((source_id, result, started.elapsed() + fetch_took)));
        }
        // Rotated credentials are stored before any job is booked: if they cannot be, the
        // jobs are left for redelivery, as a single job was.
        if let Err(e) = self.persist_rotated_credentials(connection).await {
            return jobs.iter().map(|_| Err(shared_failure(&e))).collect();
        }
        let mut results = Vec::new();
        for (job, applied) in jobs.iter().zip(applied) {
            results.push(match applied {
                Some((source_id, result, took)) => {
                    self.finish_job(connection, job, kind, source_id, result, took)
                        .await
                }
                None => Ok(Disposition::Done),
            });
        }
        results
    }

    /// Books a record job's result: its log row (and the incremental-update time for a
    /// webhook's change), or the retry schedule's verdict on its failure.
    async fn finish_job(
        &self,
        connection: &Connection,
        job: &Job,
        kind: ObjectKind,
        source_id: &SourceId,
        result: Result<Applied, EngineError>,
        took: Duration,
    ) -> Result<Disposition, EngineError> {
        match result {
            Ok(applied) => {
                self.record_outcome(connection, job, kind, source_id, &applied, took)
                    .await;
                self.push_back(connection, &applied).await?;
                let from_webhook = matches!(
                    job.kind,
                    JobKind::SyncRecord {
                        cause: JobCause::Webhook { .. },
                        ..
                    }
                );
                if from_webhook && applied.outcome != Outcome::Unchanged {
                    self.touch_incremental(connection).await?;
                }
                Ok(Disposition::Done)
            }
            Err(error) => {
                self.job_failed(connection, job.clone(), kind, source_id, error, took)
                    .await
            }
        }
    }

    /// Fetch -> map -> match -> apply for one record.
    pub async fn sync_record(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        source_id: &SourceId,
    ) -> Result<Applied, EngineError> {
        let fetch = self
            .fetch_records(connection, kind, std::slice::from_ref(source_id))
            .await?;
        self.apply_fetched(connection, kind, source_id, &fetch)
            .await
    }

    /// Records of one kind, fresh from the provider in one batched read, with the filter's
    /// verdict on the companies among them.
    async fn fetch_records(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        ids: &[SourceId],
    ) -> Result<Fetch, EngineError> {
        let provider = self.provider(connection.provider)?;
        let properties = connection.properties_to_read(kind);
        let mut unique = ids.to_vec();
        unique.sort();
        unique.dedup();
        let records: HashMap<SourceId, Fetched> = provider
            .fetch(connection, kind, &unique, &properties)
            .await?
            .into_iter()
            .collect();
        let companies: Vec<SourceId> = records
            .values()
            .filter_map(|f| match f {
                Fetched::Found(r) if r.kind == ObjectKind::Company => Some(r.id.clone()),
                _ => None,
            })
            .collect();
        let members = if companies.is_empty() {
            BTreeMap::new()
        } else {
            provider.filter_members(connection, &companies).await?
        };
        Ok(Fetch { records, members })
    }

    async fn apply_fetched(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        source_id: &SourceId,
        fetch: &Fetch,
    ) -> Result<Applied, EngineError> {
        let schema = self.schema(connection, kind).await?;
        let ctx = ApplyContext {
            store: self.store.as_ref(),
            connection,
            schema: &schema,
            currency: self.settings.arr_currency,
            now: Timestamp::now(),
        };
        match fetch.records.get(source_id) {
            None | Some(Fetched::Gone) => {
                let seen = apply::seen_gone_at(ctx.now);
                apply::apply_gone(&ctx, kind, source_id, ArchiveReason::SourceDeleted, seen).await
            }
            Some(Fetched::Found(record)) => {
                let record = apply::answering_for(source_id, record.clone());
                let in_filter = record.kind != ObjectKind::Company
                    || fetch.members.get(&record.id).copied().unwrap_or(false);
                apply::apply_record(&ctx, &record, in_filter).await
            }
        }
    }

    /// The log row for a finished record: changes and holds are logged, unchanged records
    /// are not (a nightly pass over unchanged data writes nothing).
    pub(crate) async fn record_outcome(
        &self,
        connection: &Connection,
        job: &Job,
        kind: ObjectKind,
        source_id: &SourceId,
        applied: &Applied,
        took: Duration,
    ) {
        let (status, code, message) = match &applied.outcome {
            // A record still waiting on its open match was logged when the match opened:
            // every later pass would only bury real errors under the same row.
            Outcome::Unchanged | Outcome::Skipped | Outcome::Waiting(_)
                if applied.problems.is_empty() =>
            {
                return;
            }
            Outcome::Unchanged | Outcome::Skipped | Outcome::Waiting(_) => {
                (LogStatus::Unchanged, None, None)
            }
            Outcome::Applied => (LogStatus::Applied, None, None),
            Outcome::Pushed(_) => (
                LogStatus::Applied,
                None,
                Some("applied what changed at the provider; fields changed here later are pushed back".into()),
            ),
            Outcome::Restored => (LogStatus::Restored, None, None),
            Outcome::Archived => (LogStatus::Archived, None, None),
            Outcome::Held(id) => (
                LogStatus::Held,
                Some(ErrorCode::MatchAmbiguous),
                Some(format!(
                    "several customers match: pending match {id} waits for the admin"
                )),
            ),
            Outcome::Unmatched(id) => (
                LogStatus::Held,
                None,
                Some(format!("no customer matches: listed as unmatched ({id}) for the admin")),
            ),
            Outcome::Cleared => (
                LogStatus::Archived,
                Some(ErrorCode::SourceDeleted),
                Some("the billing record was deleted at the provider: its fields were cleared; the customer stays".into()),
            ),
        };
        let mut entry = record_entry(connection, job, kind, source_id, status, took);
        entry.error_code = code;
        entry.message = message;
        if !applied.problems.is_empty() {
            entry.error_code = Some(ErrorCode::FieldMappingInvalid);
            let fields: Vec<String> = applied
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.target.as_string(), p.reason))
                .collect();
            entry.message = Some(format!("skipped fields: {}", fields.join("; ")));
            entry.retry_job = Some(job.clone());
        }
        self.log(entry).await;
    }

    async fn job_failed(
        &self,
        connection: &Connection,
        job: Job,
        kind: ObjectKind,
        source_id: &SourceId,
        error: EngineError,
        took: Duration,
    ) -> Result<Disposition, EngineError> {
        let code = error.code();
        if let Some((next, delay)) = self.next_try(&job, code, error.retry_after()) {
            return Ok(Disposition::Retry { job: next, delay });
        }
        let mut entry = record_entry(connection, &job, kind, source_id, LogStatus::Failed, took);
        entry.error_code = Some(code);
        entry.retry_count = job.attempt;
        entry.message = Some(error.to_string());
        entry.provider_response = error.logged_response();
        self.end_failed_job(
            Some(connection),
            &job,
            code,
            error.missing_scopes(),
            entry,
            &error,
        )
        .await
    }

    /// The job's next try after a failure with `code`, and its delay, while the retry
    /// policy allows one.
    pub(crate) fn next_try(
        &self,
        job: &Job,
        code: ErrorCode,
        retry_after: Option<Duration>,
    ) -> Option<(Job, Duration)> {
        let delay = self
            .settings
            .retry
            .next_delay(code, job.attempt, retry_after)?;
        tracing::info!(job = %job.id, %code, attempt = job.attempt, ?delay, "job will be retried");
        let mut next = job.clone();
        next.attempt += 1;
        Some((next, delay))
    }

    /// Ends a job that is not tried again with its `failed` row: the connection learns
    /// the refusal, and the row carries the job for Retry and, for our own bug, a
    /// correlation id. This row is the job's only trace from here on: if it cannot be
    /// written, the message stays for redelivery instead of vanishing.
    pub(crate) async fn end_failed_job(
        &self,
        connection: Option<&Connection>,
        job: &Job,
        code: ErrorCode,
        missing_scopes: &[String],
        mut entry: LogEntry,
        cause: &(dyn std::fmt::Debug + Sync),
    ) -> Result<Disposition, EngineError> {
        if let Some(connection) = connection {
            self.apply_refusal(connection, code, missing_scopes).await?;
        }
        entry.status = LogStatus::Failed;
        entry.error_code = Some(code);
        if code == ErrorCode::Internal {
            let correlation = job.id.to_string();
            tracing::error!(correlation_id = %correlation, error = ?cause, "job failed with an internal error");
            entry.correlation_id = Some(correlation);
        }
        entry.retry_job = Some(retry_of(job));
        self.store.append_log(&entry).await?;
        Ok(Disposition::Done)
    }

    /// A job the queue is about to give up on (it failed on its last delivery): a log row
    /// with a Retry takes its place, so nothing is dead-lettered without a trace.
    pub async fn abandon_job(
        &self,
        job: &Job,
        code: ErrorCode,
        reason: &str,
        deliveries: u32,
    ) -> Result<(), EngineError> {
        let mut entry = LogEntry::new(
            job.tenant_id.clone(),
            job.connection_id.clone(),
            job.provider,
            LogStatus::Failed,
            Timestamp::now(),
        );
        match &job.kind {
            JobKind::SyncRecord {
                object, source_id, ..
            } => {
                entry.object_kind = Some(*object);
                entry.record_id = Some(source_id.clone());
            }
            JobKind::PushContact { contact_id, .. } => {
                entry.object_kind = Some(ObjectKind::Contact);
                entry.contact_id = Some(contact_id.clone());
            }
            JobKind::Reconcile { .. } => return Ok(()),
        }
        entry.error_code = Some(code);
        entry.retry_count = job.attempt;
        entry.message = Some(format!("gave up after {deliveries} deliveries: {reason}"));
        entry.correlation_id = Some(job.id.to_string());
        entry.retry_job = Some(retry_of(job));
        self.store.append_log(&entry).await?;
        Ok(())
    }

    async fn touch_incremental(&self, connection: &Connection) -> Result<(), EngineError> {
        let now = Timestamp::now();
        let interval = self.settings.incremental_touch_interval;
        let fresh = |at: Option<Timestamp>| at.is_some_and(|at| now.since(at) < interval);
        if fresh(connection.last_incremental_update) {
            return Ok(());
        }
        self.update_connection(&connection.tenant_id, &connection.id, |c| {
            if fresh(c.last_incremental_update) {
                return false;
            }
            c.last_incremental_update = Some(now);
            true
        })
        .await?;
        Ok(())
    }
}

/// What one shared fetch found: each asked id's answer, and the filter's verdict on the
/// companies found.
struct Fetch {
    records: HashMap<SourceId, Fetched>,
    members: BTreeMap<SourceId, bool>,
}

/// The jobs of a batch that can share a fetch, as indices into `jobs`: record jobs by
/// tenant, connection and kind, anything else on its own. Groups keep the batch's order,
/// and so do the jobs in each group.
pub fn coalesce(jobs: &[Job]) -> Vec<Vec<usize>> {
    grouped(jobs).into_iter().map(|(_, group)| group).collect()
}

fn grouped(jobs: &[Job]) -> Vec<(Option<ObjectKind>, Vec<usize>)> {
    let mut groups: Vec<(Option<ObjectKind>, Vec<usize>)> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let kind = match &job.kind {
            JobKind::SyncRecord { object, .. } => *object,
            _ => {
                groups.push((None, vec![i]));
                continue;
            }
        };
        let same = |g: &(Option<ObjectKind>, Vec<usize>)| {
            let other = &jobs[g.1[0]];
            g.0 == Some(kind)
                && other.tenant_id == job.tenant_id
                && other.connection_id == job.connection_id
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(group) => group.1.push(i),
            None => groups.push((Some(kind), vec![i])),
        }
    }
    groups
}

fn record_id(job: &Job) -> Option<&SourceId> {
    match &job.kind {
        JobKind::SyncRecord { source_id, .. } => Some(source_id),
        _ => None,
    }
}

/// A failure several jobs shared, for each of them (each is retried or logged on its own),
/// with the same code.
fn shared_failure(error: &EngineError) -> EngineError {
    match error {
        EngineError::Provider(e) => EngineError::Provider(e.clone()),
        other if other.code() == ErrorCode::StoreUnavailable => EngineError::Store(
            StoreError::backend(std::io::Error::other(other.to_string())),
        ),
        other => EngineError::Corrupt(other.to_string()),
    }
}

/// What Retry sends: the job again, from its first attempt.
pub(crate) fn retry_of(job: &Job) -> Job {
    let mut retry = job.clone();
    retry.attempt = 0;
    retry
}

fn record_entry(
    connection: &Connection,
    job: &Job,
    kind: ObjectKind,
    source_id: &SourceId,
    status: LogStatus,
    took: Duration,
) -> LogEntry {
    let mut entry = LogEntry::new(
        connection.tenant_id.clone(),
        connection.id.clone(),
        connection.provider,
        status,
        Timestamp::now(),
    );
    entry.object_kind = Some(kind);
    entry.record_id = Some(source_id.clone());
    entry.duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    entry.retry_count = job.attempt;
    entry
}

//! The record worker: one job = one record, fetched fresh, mapped, matched and applied.
//! Failures follow the retry policy; the last one becomes a log row with a Retry action.

use std::time::{Duration, Instant};

use super::apply::{self, Applied, ApplyContext, Outcome};
use super::{Engine, EngineError};
use crate::model::{
    ArchiveReason, Connection, ErrorCode, Job, JobCause, JobKind, LogEntry, LogStatus, ObjectKind,
    SourceId, Timestamp,
};
use crate::ports::OutgoingMessage;
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
        let JobKind::SyncRecord {
            object,
            source_id,
            cause,
        } = &job.kind
        else {
            tracing::warn!(job = %job.id, "a reconcile job reached the record queue: moved to the reconcile queue");
            self.reconcile_jobs
                .send_batch(&[OutgoingMessage::now(job.to_body())])
                .await?;
            return Ok(Disposition::Done);
        };
        let Some(connection) = self
            .store
            .get_connection(&job.tenant_id, &job.connection_id)
            .await?
        else {
            tracing::warn!(job = %job.id, "job for a connection that no longer exists: dropped");
            return Ok(Disposition::Done);
        };
        if !connection.accepts_jobs() {
            tracing::info!(job = %job.id, status = ?connection.status, "connection does not accept jobs: dropped");
            return Ok(Disposition::Done);
        }
        let started = Instant::now();
        let result = self.sync_record(&connection, *object, source_id).await;
        let took = started.elapsed();
        self.persist_rotated_credentials(&connection).await?;
        match result {
            Ok(applied) => {
                self.record_outcome(&connection, &job, *object, source_id, &applied, took)
                    .await;
                if matches!(cause, JobCause::Webhook { .. })
                    && applied.outcome != Outcome::Unchanged
                {
                    self.touch_incremental(&connection).await?;
                }
                Ok(Disposition::Done)
            }
            Err(error) => {
                self.job_failed(&connection, job.clone(), *object, source_id, error, took)
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
        let provider = self.provider(connection.provider)?;
        let schema = self.schema(connection, kind).await?;
        let properties = connection.field_mapping.source_properties(kind);
        let fetched = provider
            .fetch(
                connection,
                kind,
                std::slice::from_ref(source_id),
                &properties,
            )
            .await?;
        let ctx = ApplyContext {
            store: self.store.as_ref(),
            connection,
            schema: &schema,
            currency: self.settings.arr_currency,
            now: Timestamp::now(),
        };
        match fetched.into_iter().next().map(|(_, f)| f) {
            None | Some(Fetched::Gone) => {
                let seen = apply::seen_gone_at(ctx.now);
                apply::apply_gone(&ctx, kind, source_id, ArchiveReason::SourceDeleted, seen).await
            }
            Some(Fetched::Found(record)) => {
                let record = apply::answering_for(source_id, record);
                let in_filter = if record.kind == ObjectKind::Company {
                    let members = provider
                        .filter_members(connection, std::slice::from_ref(&record.id))
                        .await?;
                    members.get(&record.id).copied().unwrap_or(false)
                } else {
                    true
                };
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
        let retry_after = error.retry_after();
        if let Some(delay) = self
            .settings
            .retry
            .next_delay(code, job.attempt, retry_after)
        {
            tracing::info!(job = %job.id, %code, attempt = job.attempt, ?delay, "record job will be retried");
            let mut next = job;
            next.attempt += 1;
            return Ok(Disposition::Retry { job: next, delay });
        }
        self.apply_refusal(connection, code, error.missing_scopes())
            .await?;
        let mut entry = record_entry(connection, &job, kind, source_id, LogStatus::Failed, took);
        entry.error_code = Some(code);
        entry.retry_count = job.attempt;
        entry.message = Some(error.to_string());
        entry.provider_response = error.logged_response();
        if code == ErrorCode::Internal {
            let correlation = job.id.to_string();
            tracing::error!(correlation_id = %correlation, error = ?error, "record job failed with an internal error");
            entry.correlation_id = Some(correlation);
        }
        let mut retry = job;
        retry.attempt = 0;
        entry.retry_job = Some(retry);
        // This row is the job's only trace from here on: if it cannot be written, the
        // message stays for redelivery instead of vanishing.
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
        let JobKind::SyncRecord {
            object, source_id, ..
        } = &job.kind
        else {
            return Ok(());
        };
        let mut entry = LogEntry::new(
            job.tenant_id.clone(),
            job.connection_id.clone(),
            job.provider,
            LogStatus::Failed,
            Timestamp::now(),
        );
        entry.object_kind = Some(*object);
        entry.record_id = Some(source_id.clone());
        entry.error_code = Some(code);
        entry.retry_count = job.attempt;
        entry.message = Some(format!("gave up after {deliveries} deliveries: {reason}"));
        entry.correlation_id = Some(job.id.to_string());
        let mut retry = job.clone();
        retry.attempt = 0;
        entry.retry_job = Some(retry);
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

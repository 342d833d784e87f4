//! Job batches as the queue delivers them: the SQS-triggered functions and the local
//! stack's pollers both call these. Each message is parsed and run on its own, so one bad
//! message fails alone; the caller reports the failed ids (SQS partial batch failures)
//! and the queue delivers them again (and dead-letters them in the end).

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tracing::Instrument;

use connector::engine::EngineError;
pub use connector::engine::reconcile::Budget;
use connector::engine::reconcile::StepResult;
use connector::engine::schedule::SweepReport;
use connector::engine::worker::{self, Disposition};
use connector::ports::OutgoingMessage;
use connector::{ErrorCode, Job};

use crate::app::App;

/// One message of a batch.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub body: String,
    /// How many times the queue has delivered it, this time included (1 the first time).
    pub receive_count: u32,
}

/// The record queue's `maxReceiveCount` (template.yaml): the delivery after which the
/// queue dead-letters a message.
pub const RECORD_MAX_RECEIVES: u32 = 5;

/// A job cut off by the invocation's deadline is sent again after this long.
const CUT_OFF_RETRY: Duration = Duration::from_secs(30);

/// How many groups of one batch (jobs of one connection and kind) run at once.
pub const RECORD_CONCURRENCY: usize = 8;

/// Runs record jobs, each until `deadline` (the invocation's, less a margin); returns the
/// ids of the messages that failed. The jobs of one connection and record kind run
/// together and share their fetch ([`worker::coalesce`]); each message still gets its own
/// verdict.
pub async fn run_record_batch(
    app: &App,
    messages: Vec<Message>,
    deadline: Option<Instant>,
) -> Vec<String> {
    let mut failed = Vec::new();
    let mut parsed = Vec::new();
    for m in messages {
        match Job::from_body(&m.body) {
            Ok(job) => parsed.push((m, job)),
            Err(e) => {
                tracing::warn!(message = %m.id, reason = %e, "record message does not parse; the queue will deliver it again");
                failed.push(m.id);
            }
        }
    }
    let jobs: Vec<Job> = parsed.iter().map(|(_, job)| job.clone()).collect();
    let groups: Vec<Vec<(Message, Job)>> = worker::coalesce(&jobs)
        .into_iter()
        .map(|group| group.into_iter().map(|i| parsed[i].clone()).collect())
        .collect();
    let verdicts: Vec<Vec<(String, Result<(), String>)>> = futures::stream::iter(groups)
        .map(|group| {
            let span = match group.first() {
                Some((_, job)) => tracing::info_span!("record_jobs", jobs = group.len(), tenant = %job.tenant_id, connection = %job.connection_id),
                None => tracing::Span::none(),
            };
            run_record_group(app, group, deadline).instrument(span)
        })
        .buffer_unordered(RECORD_CONCURRENCY)
        .collect()
        .await;
    for (id, verdict) in verdicts.into_iter().flatten() {
        if let Err(reason) = verdict {
            tracing::warn!(message = %id, %reason, "record message failed; the queue will deliver it again");
            failed.push(id);
        }
    }
    failed
}

/// One group's jobs together. A panic fails no message unjudged: each job of the group then
/// runs alone, so only the one that panics fails.
async fn run_record_group(
    app: &App,
    group: Vec<(Message, Job)>,
    deadline: Option<Instant>,
) -> Vec<(String, Result<(), String>)> {
    let jobs: Vec<Job> = group.iter().map(|(_, job)| job.clone()).collect();
    match run_until(app, &jobs, deadline).await {
        Ran::Judged(results) => {
            let mut verdicts = Vec::new();
            for ((message, job), result) in group.iter().zip(results) {
                verdicts.push((message.id.clone(), settle(app, job, message, result).await));
            }
            verdicts
        }
        Ran::CutOff => {
            tracing::warn!("record jobs cut off by the invocation's deadline; sent again");
            let mut verdicts = Vec::new();
            for (message, job) in &group {
                verdicts.push((
                    message.id.clone(),
                    send_again(app, job, CUT_OFF_RETRY).await,
                ));
            }
            verdicts
        }
        Ran::Panicked if group.len() > 1 => {
            let mut verdicts = Vec::new();
            for one in group {
                verdicts.extend(Box::pin(run_record_group(app, vec![one], deadline)).await);
            }
            verdicts
        }
        Ran::Panicked => {
            let mut verdicts = Vec::new();
            for (message, job) in &group {
                let verdict = last_delivery(
                    app,
                    job,
                    message,
                    ErrorCode::Internal,
                    "the job panicked".into(),
                )
                .await;
                verdicts.push((message.id.clone(), verdict));
            }
            verdicts
        }
    }
}

enum Ran {
    Judged(Vec<Result<Disposition, EngineError>>),
    CutOff,
    Panicked,
}

async fn run_until(app: &App, jobs: &[Job], deadline: Option<Instant>) -> Ran {
    // Nothing starts past the deadline (a fast run could otherwise finish inside the
    // timeout's first poll, and the cut-off would depend on timing).
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Ran::CutOff;
    }
    let run = AssertUnwindSafe(app.engine.run_jobs(jobs)).catch_unwind();
    let finished = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), run).await.ok(),
        None => Some(run.await),
    };
    match finished {
        None => Ran::CutOff,
        Some(Ok(results)) => Ran::Judged(results),
        Some(Err(_panic)) => Ran::Panicked,
    }
}

/// What becomes of one message once its job was judged.
async fn settle(
    app: &App,
    job: &Job,
    message: &Message,
    result: Result<Disposition, EngineError>,
) -> Result<(), String> {
    match result {
        Ok(Disposition::Done) => Ok(()),
        Ok(Disposition::Retry { job, delay }) => send_again(app, &job, delay).await,
        Err(e) => last_delivery(app, job, message, e.code(), e.to_string()).await,
    }
}

async fn send_again(app: &App, job: &Job, delay: Duration) -> Result<(), String> {
    app.engine
        .record_jobs
        .send_batch(&[OutgoingMessage::delayed(job.to_body(), delay)])
        .await
        .map_err(|e| e.to_string())
}

/// A job that failed: the queue delivers it again, except on its last delivery, where it
/// would be dead-lettered without a trace; there it leaves a log row with a Retry instead.
async fn last_delivery(
    app: &App,
    job: &Job,
    message: &Message,
    code: ErrorCode,
    reason: String,
) -> Result<(), String> {
    if message.receive_count < RECORD_MAX_RECEIVES {
        return Err(reason);
    }
    app.engine
        .abandon_job(job, code, &reason, message.receive_count)
        .await
        .map_err(|e| format!("{reason}; its log row could not be written either: {e}"))
}

/// Runs reconcile jobs one after the other, each within `budget`; returns the failed ids.
pub async fn run_reconcile_batch(app: &App, messages: Vec<Message>, budget: Budget) -> Vec<String> {
    let mut failed = Vec::new();
    for m in messages {
        let budget = budget.clone();
        let outcome = match Job::from_body(&m.body) {
            Ok(job) => app
                .engine
                .continue_reconcile_job(&job, budget)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(StepResult::Completed(counters)) => {
                tracing::info!(message = %m.id, ?counters, "full sync completed")
            }
            Ok(StepResult::Continued) => {
                tracing::info!(message = %m.id, "full sync checkpointed; continues in a new invocation")
            }
            Ok(StepResult::Stopped(why)) => {
                tracing::info!(message = %m.id, %why, "reconcile job ended")
            }
            Err(reason) => {
                tracing::warn!(message = %m.id, %reason, "reconcile message failed; the queue will deliver it again");
                failed.push(m.id);
            }
        }
    }
    failed
}

/// The scheduled sweep for an EventBridge event: at the event's `time` (when the rule
/// fired), or now when the event names none.
pub async fn run_sweep(app: &App, event: &serde_json::Value) -> Result<SweepReport, EngineError> {
    let now = event
        .get("time")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| connector::Timestamp::parse_rfc3339(t).ok())
        .unwrap_or_else(connector::Timestamp::now);
    let report = app.engine.sweep(now).await?;
    tracing::info!(?report, "sweep done");
    Ok(report)
}

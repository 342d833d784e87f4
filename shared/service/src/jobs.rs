//! Job batches as the queue delivers them: the SQS-triggered functions and the local
//! stack's pollers both call these. Each message is parsed and run on its own, so one bad
//! message fails alone; the caller reports the failed ids (SQS partial batch failures)
//! and the queue delivers them again (and dead-letters them in the end).

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};

use connector::engine::reconcile::{Budget, StepResult};
use connector::engine::worker::Disposition;
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

/// How many jobs of one batch run at once.
pub const RECORD_CONCURRENCY: usize = 8;

/// Runs record jobs, each until `deadline` (the invocation's, less a margin); returns the
/// ids of the messages that failed.
pub async fn run_record_batch(
    app: &App,
    messages: Vec<Message>,
    deadline: Option<Instant>,
) -> Vec<String> {
    futures::stream::iter(messages)
        .map(|m| async move {
            match run_record_message(app, &m, deadline).await {
                Ok(()) => None,
                Err(reason) => {
                    tracing::warn!(message = %m.id, %reason, "record message failed; the queue will deliver it again");
                    Some(m.id)
                }
            }
        })
        .buffer_unordered(RECORD_CONCURRENCY)
        .filter_map(|failed| async move { failed })
        .collect()
        .await
}

async fn run_record_message(
    app: &App,
    message: &Message,
    deadline: Option<Instant>,
) -> Result<(), String> {
    let job = Job::from_body(&message.body).map_err(|e| e.to_string())?;
    let span = tracing::info_span!("record_job", job = %job.id, tenant = %job.tenant_id, connection = %job.connection_id);
    let _entered = span.enter();
    // A panic fails this message alone, never the batch.
    let run = AssertUnwindSafe(app.engine.run_job(job.clone())).catch_unwind();
    let finished = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), run).await.ok(),
        None => Some(run.await),
    };
    match finished {
        None => {
            tracing::warn!("record job cut off by the invocation's deadline; sent again");
            send_again(app, &job, CUT_OFF_RETRY).await
        }
        Some(Ok(Ok(Disposition::Done))) => Ok(()),
        Some(Ok(Ok(Disposition::Retry { job, delay }))) => send_again(app, &job, delay).await,
        Some(Ok(Err(e))) => last_delivery(app, &job, message, e.code(), e.to_string()).await,
        Some(Err(_panic)) => {
            last_delivery(
                app,
                &job,
                message,
                ErrorCode::Internal,
                "the job panicked".into(),
            )
            .await
        }
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

/// Runs reconcile jobs one after the other, each until `deadline`; returns the failed ids.
pub async fn run_reconcile_batch(
    app: &App,
    messages: Vec<Message>,
    deadline: Option<Instant>,
) -> Vec<String> {
    let mut failed = Vec::new();
    for m in messages {
        let budget = deadline
            .map(Budget::until)
            .unwrap_or_else(Budget::unbounded);
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

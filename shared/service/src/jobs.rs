//! Job batches as the queue delivers them: the SQS-triggered functions and the local
//! stack's pollers both call these. Each message is parsed and run on its own, so one bad
//! message fails alone; the caller reports the failed ids (SQS partial batch failures)
//! and the queue delivers them again (and dead-letters them in the end).

use std::time::Instant;

use futures::StreamExt;

use connector::Job;
use connector::engine::reconcile::{Budget, StepResult};
use connector::engine::worker::Disposition;
use connector::ports::OutgoingMessage;

use crate::app::App;

/// One message of a batch.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// How many jobs of one batch run at once.
pub const RECORD_CONCURRENCY: usize = 8;

/// Runs record jobs; returns the ids of the messages that failed.
pub async fn run_record_batch(app: &App, messages: Vec<Message>) -> Vec<String> {
    futures::stream::iter(messages)
        .map(|m| async move {
            match run_record_message(app, &m).await {
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

async fn run_record_message(app: &App, message: &Message) -> Result<(), String> {
    let job = Job::from_body(&message.body).map_err(|e| e.to_string())?;
    let span = tracing::info_span!("record_job", job = %job.id, tenant = %job.tenant_id, connection = %job.connection_id);
    let _entered = span.enter();
    match app.engine.run_job(job).await.map_err(|e| e.to_string())? {
        Disposition::Done => Ok(()),
        Disposition::Retry { job, delay } => app
            .engine
            .record_jobs
            .send_batch(&[OutgoingMessage::delayed(job.to_body(), delay)])
            .await
            .map_err(|e| e.to_string()),
    }
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

//! reconciler: the sweep (EventBridge, every 15 minutes: notifications reviewed, each
//! connection's nightly pass started at its time) and the full-sync passes themselves
//! (SQS reconcile jobs), each checkpointing a minute before the Lambda's deadline.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use sync_service::jobs;

/// Left for the checkpoint write and the hand-over message.
const HANDOVER_MARGIN: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    sync_service::init_lambda_tracing();
    let app = Arc::new(sync_service::aws::app_from_env().await?);
    run(service_fn(|event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let deadline = sqs_batch::deadline_before(event.context.deadline, HANDOVER_MARGIN);
            if event.payload.get("Records").is_some() {
                let sqs: SqsEvent = serde_json::from_value(event.payload)?;
                let failed = jobs::run_reconcile_batch(
                    &app,
                    sqs_batch::messages(sqs),
                    jobs::Budget::until(deadline),
                )
                .await;
                Ok::<Value, Error>(serde_json::to_value(sqs_batch::batch_response(failed))?)
            } else {
                let report = jobs::run_sweep(&app, &event.payload).await?;
                Ok(serde_json::to_value(report)?)
            }
        }
    }))
    .await
}

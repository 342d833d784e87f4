//! record-worker: runs record jobs from SQS, reporting partial batch failures.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sync_service::jobs;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sync_service::init_lambda_tracing();
    let app = Arc::new(sync_service::aws::app_from_env().await?);
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            let deadline = sqs_batch::deadline_before(event.context.deadline, MARGIN);
            let failed =
                jobs::run_record_batch(&app, sqs_batch::messages(event.payload), Some(deadline))
                    .await;
            Ok::<_, Error>(sqs_batch::batch_response(failed))
        }
    }))
    .await
}

/// Left to send cut-off jobs back and answer the batch.
const MARGIN: Duration = Duration::from_secs(5);

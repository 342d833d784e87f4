//! record-worker: runs record jobs from SQS, reporting partial batch failures.

use std::sync::Arc;

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
            let failed = jobs::run_record_batch(&app, sqs_batch::messages(event.payload)).await;
            Ok::<_, Error>(sqs_batch::batch_response(failed))
        }
    }))
    .await
}

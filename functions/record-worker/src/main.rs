//! record-worker: runs record jobs from SQS, reporting partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sync_service::jobs::{self, Message};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sync_service::init_lambda_tracing();
    let app = Arc::new(sync_service::aws::app_from_env().await?);
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        async move {
            let failed = jobs::run_record_batch(&app, messages(event.payload)).await;
            Ok::<_, Error>(batch_response(failed))
        }
    }))
    .await
}

fn messages(event: SqsEvent) -> Vec<Message> {
    event
        .records
        .into_iter()
        .map(|r| Message {
            id: r.message_id.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
        })
        .collect()
}

fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

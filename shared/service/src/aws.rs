//! Wiring on AWS: the state store on DynamoDB and the two job queues on SQS, named by the
//! environment the SAM template sets. Clients are built once per cold start.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use connector_aws::dynamodb::DynamoStore;
use connector_aws::sqs::SqsQueue;

use crate::app::App;
use crate::config::{Config, ConfigError};

fn need(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The app as a Lambda function runs it.
pub async fn app_from_env() -> Result<App, ConfigError> {
    let config = Config::from_env()?;
    let table = need("TABLE_NAME")?;
    let record_queue = need("RECORD_QUEUE_URL")?;
    let record_dlq = need("RECORD_DLQ_URL")?;
    let reconcile_queue = need("RECONCILE_QUEUE_URL")?;
    let reconcile_dlq = need("RECONCILE_DLQ_URL")?;
    let sdk = connector_aws::with_http_client(aws_config::defaults(BehaviorVersion::latest()))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(15))
                .build(),
        )
        .load()
        .await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let records = Arc::new(SqsQueue::new(sqs.clone(), record_queue, record_dlq));
    let reconciles = Arc::new(SqsQueue::new(sqs, reconcile_queue, reconcile_dlq));
    config.build(store, records, reconciles, |h| h)
}

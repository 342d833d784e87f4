//! Wiring on AWS: the state store on DynamoDB and the two job queues on SQS, named by the
//! environment the SAM template sets. Clients are built once per cold start.

use std::sync::Arc;
use std::time::Duration;

use aws_types::sdk_config::{RetryConfig, TimeoutConfig};
use connector_aws::AwsSettings;
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
    let aws = AwsSettings {
        region: need("AWS_REGION")?,
        access_key_id: need("AWS_ACCESS_KEY_ID")?,
        secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
        session_token: std::env::var("AWS_SESSION_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        endpoint_url: std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|u| !u.is_empty()),
    };
    let sdk = connector_aws::sdk_config(&aws)
        .map_err(|e| ConfigError::Backend(format!("cannot build the AWS HTTP client: {e}")))?
        .to_builder()
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(15))
                .build(),
        )
        .build();
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let records = Arc::new(SqsQueue::new(sqs.clone(), record_queue, record_dlq));
    let reconciles = Arc::new(SqsQueue::new(sqs, reconcile_queue, reconcile_dlq));
    config.build(store, records, reconciles, |h| h)
}

//! webhook-intake: verifies, dedupes and enqueues provider webhooks (API Gateway HTTP API).

use std::sync::Arc;

use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sync_service::init_lambda_tracing();
    let app = Arc::new(sync_service::aws::app_from_env().await?);
    run(sync_service::http::webhooks::router(app)).await
}

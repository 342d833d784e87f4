//! `GET /oauth/hubspot/callback`: the provider's redirect after the admin consented.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use connector::Provider;

use super::error::ApiError;
use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/oauth/hubspot/callback", get(hubspot_callback))
        .with_state(app)
}

async fn hubspot_callback(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let param = |name: &str| query.get(name).map(String::as_str);
    let error = param("error_description").or(param("error"));
    let connection = crate::oauth::complete(
        &app,
        Provider::Hubspot,
        param("code"),
        param("state"),
        error,
    )
    .await?;
    Ok(Json(json!({
        "status": connection.status,
        "connection_id": connection.id,
        "account_id": connection.account_id,
        "detail": "Connected. The initial sync has started.",
    })))
}

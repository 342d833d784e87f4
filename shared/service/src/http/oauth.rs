//! `GET /oauth/{hubspot,stripe}/callback`: the provider's redirect after the admin consented.

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
        .route("/oauth/stripe/callback", get(stripe_callback))
        .with_state(app)
}

async fn hubspot_callback(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    callback(&app, Provider::Hubspot, &query).await
}

async fn stripe_callback(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    callback(&app, Provider::Stripe, &query).await
}

/// Both providers redirect with `code` and `state`, or `error` (+ `error_description`).
async fn callback(
    app: &App,
    provider: Provider,
    query: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let param = |name: &str| query.get(name).map(String::as_str);
    let error = param("error_description").or(param("error"));
    let connection =
        crate::oauth::complete(app, provider, param("code"), param("state"), error).await?;
    Ok(Json(json!({
        "status": connection.status,
        "connection_id": connection.id,
        "account_id": connection.account_id,
        "detail": "Connected. The initial sync has started.",
    })))
}

//! `GET /oauth/{hubspot,stripe}/callback`: the provider's redirect after the admin consented.
//! A browser gets a page that says how it went and leads back to the console's
//! Integrations; any other client gets JSON.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
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
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    answer(&headers, callback(&app, Provider::Hubspot, &query).await)
}

async fn stripe_callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    answer(&headers, callback(&app, Provider::Stripe, &query).await)
}

/// A browser navigating here asks for HTML first.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

fn answer(headers: &HeaderMap, outcome: Result<Json<Value>, ApiError>) -> Response {
    if !wants_html(headers) {
        return outcome.into_response();
    }
    let shown = match outcome {
        Ok(Json(body)) => Ok(body["detail"].as_str().unwrap_or("Connected.").to_owned()),
        Err(e) => {
            tracing::warn!(status = e.status.as_u16(), code = e.code, detail = %e.detail, "OAuth callback refused");
            Err((e.status, e.code, e.detail))
        }
    };
    let status = shown
        .as_ref()
        .map_or_else(|(s, _, _)| *s, |_| axum::http::StatusCode::OK);
    (status, crate::console::oauth_result_page(shown)).into_response()
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
        "detail": format!(
            "Connected to {} account {}. The initial sync has started.",
            crate::console::provider_name(provider),
            connection.account_id.as_ref().map_or("(unknown)", |a| a.as_str())
        ),
    })))
}

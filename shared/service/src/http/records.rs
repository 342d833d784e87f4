//! The records API, under `/api/records`: the product's own backend writes contacts
//! here. Each write is stored at once and queued as a push for every connection that
//! pushes. Callers authenticate with a records credential (`POST /admin/records-token`),
//! which speaks for one tenant and is refused by the admin API, as admin tokens are here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use connector::engine::records::ContactInput;
use connector::{ContactId, TenantId, Timestamp};

use super::admin::{PathId, bearer, body};
use super::error::ApiError;
use crate::app::App;
use crate::auth::{AuthError, TokenKind};

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/records/contacts", post(create_contact))
        .route(
            "/api/records/contacts/{id}",
            get(contact).patch(update_contact),
        )
        .with_state(app)
}

/// The tenant a records credential speaks for.
pub struct RecordsCaller(pub TenantId);

impl FromRequestParts<Arc<App>> for RecordsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let auth = app.admin_auth.as_ref().ok_or(AuthError::NotConfigured)?;
        let verified = auth.verify_kind(TokenKind::Records, token, Timestamp::now())?;
        Ok(RecordsCaller(verified.tenant))
    }
}

/// `Idempotency-Key` makes a create safe to retry: the same key finds the same contact.
async fn create_contact(
    State(app): State<Arc<App>>,
    RecordsCaller(t): RecordsCaller,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: ContactInput = body(&raw)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("the Idempotency-Key header is not text"))
        })
        .transpose()?;
    let written = app.engine.create_contact_record(&t, input, key).await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(written))))
}

async fn update_contact(
    State(app): State<Arc<App>>,
    RecordsCaller(t): RecordsCaller,
    PathId(id): PathId<ContactId>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let input: ContactInput = body(&raw)?;
    let written = app.engine.update_contact_record(&t, &id, input).await?;
    Ok(Json(json!(written)))
}

async fn contact(
    State(app): State<Arc<App>>,
    RecordsCaller(t): RecordsCaller,
    PathId(id): PathId<ContactId>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.engine.contact_record(&t, &id).await?)))
}

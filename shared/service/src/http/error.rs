//! Every failure of an HTTP handler becomes an [`ApiError`]: a status, a machine code and
//! a human detail. 4xx say what was wrong; 5xx say nothing internal (the cause goes to the
//! log with a correlation id).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use connector::ErrorCode;
use connector::engine::EngineError;
use connector::engine::admin::AdminError;
use connector::engine::records::RecordsError;
use connector_hubspot::webhook::WebhookError;
use connector_stripe::webhook::{EventParseError, WebhookError as StripeWebhookError};

use crate::auth::AuthError;
use crate::oauth::OAuthError;
use crate::stripe::ApiKeyError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extra: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    /// A 500 whose cause is logged with a correlation id, never returned.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        let correlation = uuid_like();
        tracing::error!(correlation_id = %correlation, error = %cause, source = ?cause.source(), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error; correlation id {correlation}"),
        )
    }
}

fn uuid_like() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, detail = %self.detail, "request refused");
        }
        let mut body = json!({"code": self.code, "detail": self.detail});
        if let (Some((key, value)), Some(map)) = (self.extra, body.as_object_mut()) {
            map.insert(key.to_owned(), value);
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let code = e.code();
        match e {
            AdminError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, code, e.to_string()),
            AdminError::Conflict(_) | AdminError::NotConnected => {
                ApiError::new(StatusCode::CONFLICT, code, e.to_string())
            }
            AdminError::Invalid(_) => ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()),
            AdminError::InvalidMapping(ref problems) => {
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
                err.extra = Some(("problems", json!(problems)));
                err
            }
            AdminError::MissingScopes(ref scopes) => {
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
                err.extra = Some(("missing_scopes", json!(scopes)));
                err
            }
            AdminError::InvalidFilter(ref problems) => {
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
                err.extra = Some(("problems", json!(problems)));
                err
            }
            AdminError::Engine(EngineError::ProviderNotConfigured(p)) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_configured",
                format!("{p} is not configured in this deployment"),
            ),
            AdminError::Engine(ref inner) => match inner.code() {
                ErrorCode::Internal => ApiError::internal(&e),
                ErrorCode::RateLimited => {
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, e.to_string())
                }
                ErrorCode::ProviderUnavailable | ErrorCode::StoreUnavailable => {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
                }
                // The provider refused: the admin can act on it (reconnect, fix scopes).
                _ => ApiError::new(StatusCode::BAD_GATEWAY, code, e.to_string()),
            },
        }
    }
}

impl From<RecordsError> for ApiError {
    fn from(e: RecordsError) -> Self {
        match e {
            RecordsError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            RecordsError::Conflict => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            RecordsError::Invalid(ref problems) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request",
                    e.to_string(),
                );
                err.extra = Some(("problems", json!(problems)));
                err
            }
            RecordsError::Engine(inner) => AdminError::Engine(inner).into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::NotConfigured => {
                ApiError::new(StatusCode::NOT_FOUND, "not_configured", e.to_string())
            }
            _ => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()),
        }
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        match e {
            OAuthError::Admin(inner) => inner.into(),
            OAuthError::NotConfigured(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_configured", e.to_string())
            }
            OAuthError::BadState => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_state", e.to_string())
            }
            OAuthError::Denied(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "authorization_denied",
                e.to_string(),
            ),
            OAuthError::MissingParameter(_) => ApiError::bad_request(e.to_string()),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        let (status, code) = match e {
            WebhookError::MissingHeader(_) => {
                (StatusCode::UNAUTHORIZED, "missing_signature_header")
            }
            WebhookError::StaleTimestamp => (StatusCode::UNAUTHORIZED, "stale_timestamp"),
            WebhookError::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
            WebhookError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_payload"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<StripeWebhookError> for ApiError {
    fn from(e: StripeWebhookError) -> Self {
        let (status, code) = match e {
            StripeWebhookError::MissingHeader => {
                (StatusCode::UNAUTHORIZED, "missing_signature_header")
            }
            StripeWebhookError::StaleTimestamp => (StatusCode::UNAUTHORIZED, "stale_timestamp"),
            StripeWebhookError::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
            StripeWebhookError::Malformed => {
                (StatusCode::BAD_REQUEST, "malformed_signature_header")
            }
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<EventParseError> for ApiError {
    fn from(e: EventParseError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_payload", e.to_string())
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::Admin(inner) => inner.into(),
            ApiKeyError::NotConfigured => {
                ApiError::new(StatusCode::NOT_FOUND, "not_configured", e.to_string())
            }
            ApiKeyError::Invalid(_) | ApiKeyError::KeyRefused(_) => {
                ApiError::bad_request(e.to_string())
            }
            ApiKeyError::PermissionDenied(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "permission_denied", e.to_string())
            }
        }
    }
}

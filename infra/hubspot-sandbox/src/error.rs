//! HubSpot's error envelope `{status:"error", message, correlationId, category, ...}` and the
//! `X-HubSpot-Correlation-Id` header that repeats the body's `correlationId`.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub const CORRELATION_HEADER: &str = "x-hubspot-correlation-id";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    pub headers: Vec<(HeaderName, String)>,
}

pub fn correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl ApiError {
    pub fn new(status: StatusCode, category: Option<&str>, message: impl Into<String>) -> Self {
        let mut body = json!({
            "status": "error",
            "message": message.into(),
            "correlationId": correlation_id(),
        });
        if let Some(category) = category {
            body["category"] = json!(category);
        }
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.body[key] = value;
        self
    }

    pub fn header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"), message)
    }

    /// HubSpot's plain 404 for a numeric id that does not exist (no category).
    pub fn resource_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, None, "resource not found")
    }

    pub fn object_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Some("OBJECT_NOT_FOUND"),
            "Object not found.  objectId are usually numeric.",
        )
        .with("context", json!({ "id": [id] }))
    }

    pub fn invalid_authentication() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Some("INVALID_AUTHENTICATION"),
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )
    }

    pub fn expired_authentication(seconds_ago: i64, expired_at_iso: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Some("EXPIRED_AUTHENTICATION"),
            format!("The OAuth token used to make this call expired {seconds_ago} second(s) ago."),
        )
        .with("context", json!({ "expire time": [expired_at_iso] }))
    }

    pub fn missing_scopes(required: &[&str]) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            Some("MISSING_SCOPES"),
            "This app hasn't been granted all required scopes to make this call.",
        )
        .with(
            "errors",
            json!([{
                "message": "One or more of the following scopes are required.",
                "context": { "requiredGranularScopes": required },
            }]),
        )
    }

    pub fn rate_limited(policy: &str, message: &str, retry_after_secs: Option<u64>) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, Some("RATE_LIMITS"), message)
            .with("errorType", json!("RATE_LIMIT"))
            .with("policyName", json!(policy))
            .with("requestId", json!(correlation_id()));
        if let Some(secs) = retry_after_secs {
            error = error.header(header::RETRY_AFTER, secs.to_string());
        }
        error
    }

    pub fn internal(status: StatusCode) -> Self {
        Self::new(status, None, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let correlation = self.body["correlationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut response = (self.status, self.body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&correlation) {
            headers.insert(HeaderName::from_static(CORRELATION_HEADER), value);
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

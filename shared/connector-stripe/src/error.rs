//! Stripe's answers mapped onto the sync log's error codes (contract §4), once, here.

use std::time::Duration;

use connector::ErrorCode;
use connector::provider::ProviderError;

use crate::types::{ApiErrorBody, OAuthErrorBody};

/// Longest provider body kept on an error: what a log row keeps anyway.
const MAX_BODY: usize = connector::MAX_LOGGED_RESPONSE_BYTES;

pub(crate) fn cut(body: &str) -> String {
    if body.len() <= MAX_BODY {
        return body.to_owned();
    }
    let mut end = MAX_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

/// What the response's headers say about retrying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryHints {
    /// `Stripe-Should-Retry`: the API's advice wins over our own heuristics.
    pub should_retry: Option<bool>,
    /// `Retry-After` in seconds, when sent (Stripe does not document one; sandboxes may).
    pub retry_after: Option<Duration>,
}

impl RetryHints {
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            should_retry: text("stripe-should-retry").and_then(|v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            }),
            retry_after: text("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        }
    }
}

/// Whether a failed call is worth repeating in place: the `Stripe-Should-Retry` header
/// decides when present; otherwise throttling and outages (429, 409, 5xx) are.
pub fn is_retriable(hints: RetryHints, code: ErrorCode) -> bool {
    hints.should_retry.unwrap_or(matches!(
        code,
        ErrorCode::RateLimited | ErrorCode::ProviderUnavailable
    ))
}

/// Maps an API (`/v1/...`) error response. A 401 (bad, rolled or revoked key or token)
/// and `account_invalid` (the grant on a connected account is gone) both mean the admin
/// must reconnect: `oauth_revoked`.
pub fn classify_api(status: u16, body: &str, hints: RetryHints) -> ProviderError {
    let parsed = serde_json::from_str::<ApiErrorBody>(body).ok();
    let code = parsed.as_ref().and_then(|b| b.error.code.clone());
    let message = parsed
        .as_ref()
        .and_then(|b| b.error.message.clone())
        .unwrap_or_else(|| format!("Stripe answered HTTP {status}"));
    let error_code = match (status, code.as_deref()) {
        (_, Some("rate_limit")) | (429, _) => {
            if code.as_deref() == Some("lock_timeout") {
                // Object-lock contention, not throttling: retry like an outage.
                ErrorCode::ProviderUnavailable
            } else {
                ErrorCode::RateLimited
            }
        }
        // The key may no longer act on that account: deauthorized / revoked.
        (_, Some("account_invalid")) => ErrorCode::OauthRevoked,
        (401, _) => ErrorCode::OauthRevoked,
        (403, _) => ErrorCode::PermissionDenied,
        (404, _) => ErrorCode::SourceDeleted,
        (409, _) => ErrorCode::ProviderUnavailable,
        (s, _) if s >= 500 => ErrorCode::ProviderUnavailable,
        // 400 / 402 / other: a request we should not have sent.
        _ => ErrorCode::Internal,
    };
    ProviderError {
        code: error_code,
        message: match code {
            Some(code) => format!("{code}: {message}"),
            None => message,
        },
        status: Some(status),
        body: Some(cut(body)),
        retry_after: hints.retry_after,
        missing_scopes: Vec::new(),
        refusal: None,
    }
}

/// Maps an OAuth endpoint (`/oauth/token`, `/oauth/deauthorize`) error: its body is
/// `{"error": "invalid_grant", ...}`. A refused grant means the admin must reconnect.
pub fn classify_oauth(status: u16, body: &str, hints: RetryHints) -> ProviderError {
    let Ok(parsed) = serde_json::from_str::<OAuthErrorBody>(body) else {
        // Not the OAuth shape: maybe an API-style error (rate limits, outages).
        return classify_api(status, body, hints);
    };
    let code = match parsed.error.as_str() {
        "invalid_grant" => ErrorCode::OauthRevoked,
        _ if status == 429 => ErrorCode::RateLimited,
        _ if status >= 500 => ErrorCode::ProviderUnavailable,
        // invalid_client, invalid_request, invalid_scope, unsupported_*: our configuration.
        _ => ErrorCode::Internal,
    };
    ProviderError {
        code,
        message: match parsed.error_description {
            Some(description) => format!("{}: {description}", parsed.error),
            None => parsed.error,
        },
        status: Some(status),
        body: Some(cut(body)),
        retry_after: hints.retry_after,
        missing_scopes: Vec::new(),
        refusal: None,
    }
}

/// A request that got no answer: timeouts and connection failures are outages.
pub fn transport(error: &reqwest::Error) -> ProviderError {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_decode() || error.is_body() {
        "sent an unreadable response"
    } else {
        "failed"
    };
    ProviderError::new(
        ErrorCode::ProviderUnavailable,
        format!("request to Stripe {what}"),
    )
}

pub fn internal(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::Internal, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: Option<&str>, message: &str) -> String {
        serde_json::json!({"error": {"type": "invalid_request_error", "code": code, "message": message}})
            .to_string()
    }

    #[test]
    fn stripes_rate_limit_body_is_rate_limited_with_the_body_kept() {
        let raw = body(Some("rate_limit"), "Testmode request rate limit exceeded");
        let hints = RetryHints {
            should_retry: None,
            retry_after: Some(Duration::from_secs(2)),
        };
        let e = classify_api(429, &raw, hints);
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.status, Some(429));
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(e.body.as_deref(), Some(raw.as_str()));
        // Older API versions sent rate limits as 400 with code rate_limit.
        assert_eq!(
            classify_api(400, &raw, RetryHints::default()).code,
            ErrorCode::RateLimited
        );
    }

    #[test]
    fn a_lock_timeout_is_an_outage_not_throttling() {
        let e = classify_api(
            429,
            &body(Some("lock_timeout"), "locked"),
            RetryHints::default(),
        );
        assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    }

    #[test]
    fn auth_failures_and_lost_account_access_need_reauthorization() {
        assert_eq!(
            classify_api(
                401,
                &body(None, "Invalid API Key provided: sk_test_***"),
                RetryHints::default()
            )
            .code,
            ErrorCode::OauthRevoked
        );
        assert_eq!(
            classify_api(
                403,
                &body(
                    Some("account_invalid"),
                    "Application access may have been revoked."
                ),
                RetryHints::default()
            )
            .code,
            ErrorCode::OauthRevoked
        );
    }

    #[test]
    fn a_missing_permission_is_permission_denied() {
        let e = classify_api(
            403,
            &body(
                None,
                "Having the 'rak_subscription_read' permission would allow this request to continue.",
            ),
            RetryHints::default(),
        );
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        assert!(e.message.contains("rak_subscription_read"));
    }

    #[test]
    fn server_errors_are_outages_and_bad_requests_are_ours() {
        assert_eq!(
            classify_api(503, "<html>", RetryHints::default()).code,
            ErrorCode::ProviderUnavailable
        );
        assert_eq!(
            classify_api(
                400,
                &body(None, "You cannot expand more than 4 levels of a property."),
                RetryHints::default()
            )
            .code,
            ErrorCode::Internal
        );
        assert_eq!(
            classify_api(
                404,
                &body(Some("resource_missing"), "No such customer"),
                RetryHints::default()
            )
            .code,
            ErrorCode::SourceDeleted
        );
    }

    #[test]
    fn stripe_should_retry_overrides_the_status_heuristic() {
        let no = RetryHints {
            should_retry: Some(false),
            retry_after: None,
        };
        let yes = RetryHints {
            should_retry: Some(true),
            retry_after: None,
        };
        let none = RetryHints::default();
        let code = |status| classify_api(status, "", none).code;
        assert!(!is_retriable(no, code(500)));
        assert!(is_retriable(yes, code(400)));
        assert!(is_retriable(none, code(503)));
        assert!(is_retriable(none, code(409)));
        assert!(is_retriable(none, code(429)));
        assert!(!is_retriable(none, code(404)));
        assert!(!is_retriable(none, code(403)));
    }

    #[test]
    fn a_refused_refresh_token_is_oauth_revoked() {
        let e = classify_oauth(
            400,
            r#"{"error":"invalid_grant","error_description":"Refresh token rt_x is not valid"}"#,
            RetryHints::default(),
        );
        assert_eq!(e.code, ErrorCode::OauthRevoked);
        assert!(e.message.starts_with("invalid_grant"));
        assert_eq!(
            classify_oauth(400, r#"{"error":"invalid_client"}"#, RetryHints::default()).code,
            ErrorCode::Internal
        );
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let long = "é".repeat(5000);
        let e = classify_api(500, &long, RetryHints::default());
        assert!(e.body.is_some_and(|b| b.len() <= MAX_BODY));
    }
}

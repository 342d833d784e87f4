//! Stripe's error bodies: `{"error":{"type","code","message","param","doc_url"}}` with the
//! HTTP status Stripe uses for each case.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// One API error as Stripe would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
    /// `Stripe-Should-Retry` advice, when Stripe sends it.
    pub should_retry: Option<bool>,
    /// `Stripe-Rate-Limited-Reason` on rate-limit 429s.
    pub rate_limited_reason: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
            should_retry: None,
            rate_limited_reason: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn missing_param(param: &str) -> Self {
        Self::invalid_request(format!("Missing required param: {param}."))
            .with_code("parameter_missing")
            .with_param(param)
    }

    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::invalid_request(message)
            .with_code("parameter_invalid")
            .with_param(param)
    }

    pub fn unknown_param(param: &str) -> Self {
        Self::invalid_request(format!("Received unknown parameter: {param}"))
            .with_code("parameter_unknown")
            .with_param(param)
    }

    /// 404 `resource_missing`, worded like Stripe: "No such customer: 'cus_x'".
    pub fn no_such(object_name: &str, id: &str, param: &str) -> Self {
        Self::invalid_request(format!("No such {object_name}: '{id}'"))
            .with_status(StatusCode::NOT_FOUND)
            .with_code("resource_missing")
            .with_param(param)
    }

    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::invalid_request(format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        ))
        .with_status(StatusCode::NOT_FOUND)
    }

    pub fn no_api_key() -> Self {
        Self::invalid_request(
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication \
             for details, or we can help at https://support.stripe.com/.",
        )
        .with_status(StatusCode::UNAUTHORIZED)
    }

    pub fn invalid_api_key(key: &str) -> Self {
        Self::invalid_request(format!("Invalid API Key provided: {}", redact_key(key)))
            .with_status(StatusCode::UNAUTHORIZED)
    }

    pub fn expired_api_key(key: &str) -> Self {
        Self::invalid_request(format!("Expired API Key provided: {}", redact_key(key)))
            .with_status(StatusCode::UNAUTHORIZED)
            .with_code("api_key_expired")
    }

    /// 403 for a restricted key (or read-only token) lacking a permission.
    pub fn missing_permission(key: &str, account: &str, permission: &str) -> Self {
        Self::invalid_request(format!(
            "The provided key '{}' does not have the required permissions for this endpoint on account '{account}'. \
             Having the '{permission}' permission would allow this request to continue.",
            redact_key(key)
        ))
        .with_status(StatusCode::FORBIDDEN)
    }

    /// 403 for a `Stripe-Account` the key may not act on (unknown or deauthorized).
    pub fn no_account_access(key: &str, account: &str) -> Self {
        Self::invalid_request(format!(
            "The provided key '{}' does not have access to account '{account}' (or that account does not exist). \
             Application access may have been revoked.",
            redact_key(key)
        ))
        .with_status(StatusCode::FORBIDDEN)
        .with_code("account_invalid")
    }

    pub fn rate_limited(livemode: bool, reason: &'static str) -> Self {
        let message = if livemode {
            "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits."
        } else {
            "Testmode request rate limit exceeded, the rate limits in testmode are lower than livemode. \
             You can learn more about rate limits here https://stripe.com/docs/rate-limits."
        };
        let mut err = Self::invalid_request(message)
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_code("rate_limit");
        err.rate_limited_reason = Some(reason);
        err
    }

    /// 429 `lock_timeout`: object-lock contention, sent without `Stripe-Rate-Limited-Reason`.
    pub fn lock_timeout() -> Self {
        Self::invalid_request(
            "This object cannot be accessed right now because another API request or Stripe process is currently \
             accessing it. If you see this error intermittently, retry the request.",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_code("lock_timeout")
    }

    pub fn server_error(should_retry: bool) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "An unknown error occurred while processing your request. Please retry, or contact us at https://support.stripe.com/.",
        );
        err.should_retry = Some(should_retry);
        err
    }

    pub fn idempotency_mismatch(key: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "idempotency_error",
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                 Try using a key other than '{key}' if you meant to execute a different request."
            ),
        )
    }

    pub fn expand_too_deep() -> Self {
        Self::invalid_request("You cannot expand more than 4 levels of a property.")
            .with_param("expand")
    }

    /// The JSON body, including a `request_log_url` for `request_id`.
    pub fn body(&self, request_id: &str, livemode: bool) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        error.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        let mode = if livemode { "" } else { "test/" };
        error.insert(
            "request_log_url".into(),
            json!(format!(
                "https://dashboard.stripe.com/{mode}logs/{request_id}"
            )),
        );
        json!({ "error": Value::Object(error) })
    }
}

/// `sk_test_********************abcd`, the way Stripe echoes a key in messages.
pub fn redact_key(key: &str) -> String {
    let prefix_len = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .find(|p| key.starts_with(*p))
        .map_or(0, |p| p.len());
    let rest: Vec<char> = key.chars().skip(prefix_len).collect();
    let shown: String = rest.iter().skip(rest.len().saturating_sub(4)).collect();
    format!(
        "{}{}{}",
        &key[..prefix_len],
        "*".repeat(rest.len().saturating_sub(4)),
        shown
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_except_the_last_four_characters() {
        assert_eq!(redact_key("sk_test_abcdefgh1234"), "sk_test_********1234");
        assert_eq!(redact_key("xyz"), "xyz");
    }

    #[test]
    fn a_missing_resource_has_stripes_code_param_and_doc_url() {
        let body = ApiError::no_such("customer", "cus_x", "id").body("req_1", false);
        assert_eq!(body["error"]["code"], "resource_missing");
        assert_eq!(body["error"]["param"], "id");
        assert_eq!(body["error"]["message"], "No such customer: 'cus_x'");
        assert_eq!(
            body["error"]["doc_url"],
            "https://stripe.com/docs/error-codes/resource-missing"
        );
    }
}

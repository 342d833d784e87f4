//! HubSpot answers -> the log's error codes.

use std::time::Duration;

use connector::provider::{InvalidValue, ProviderError, Refusal};
use connector::{ErrorCode, SourceId};

use crate::wire::{ErrorBody, LegacyInvalidProperty};

/// How much of a provider body is kept in a [`ProviderError`].
pub const MAX_KEPT_BODY: usize = 2048;

pub fn truncate_body(body: &str) -> String {
    if body.len() <= MAX_KEPT_BODY {
        return body.to_owned();
    }
    let mut end = MAX_KEPT_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

/// Statuses worth retrying in place: throttling, HubSpot-side failures, data-center
/// migration (477) and write locks (423).
pub fn is_transient(status: u16) -> bool {
    matches!(status, 423 | 429 | 477) || (status >= 500 && status != 530)
}

/// 401, and the 530 Cloudflare answers to a malformed token: refresh once, then give up.
pub fn is_auth_failure(status: u16) -> bool {
    status == 401 || status == 530
}

fn parse_body(body: &str) -> ErrorBody {
    serde_json::from_str(body).unwrap_or_default()
}

fn describe(status: u16, parsed: &ErrorBody) -> String {
    let mut text = format!("HubSpot answered {status}");
    for part in [
        parsed.category.as_deref(),
        parsed.sub_category.as_deref(),
        parsed.error.as_deref(),
        parsed.policy_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        text.push(' ');
        text.push_str(part);
    }
    if let Some(message) = parsed
        .message
        .as_deref()
        .or(parsed.error_description.as_deref())
    {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

fn with_response(code: ErrorCode, status: u16, body: &str, parsed: &ErrorBody) -> ProviderError {
    let mut e = ProviderError::new(code, describe(status, parsed));
    e.status = Some(status);
    e.body = (!body.is_empty()).then(|| truncate_body(body));
    if code == ErrorCode::PermissionDenied {
        e.missing_scopes = parsed
            .errors
            .iter()
            .filter_map(|d| d.context.as_ref())
            .flat_map(|c| c.required_granular_scopes.iter().cloned())
            .collect();
    }
    e
}

const INVALID_VALUES_PREFIX: &str = "Property values were not valid: ";
const EXISTING_ID_PREFIX: &str = "Existing ID: ";

/// The properties a write's `VALIDATION_ERROR` refused: from `errors[]` (today's form),
/// with the values and options read from the JSON inside `message` where it has them.
fn invalid_values(parsed: &ErrorBody) -> Vec<InvalidValue> {
    let legacy: Vec<LegacyInvalidProperty> = parsed
        .message
        .as_deref()
        .and_then(|m| m.strip_prefix(INVALID_VALUES_PREFIX))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let value_of = |name: &str| {
        legacy
            .iter()
            .find(|l| l.name.as_deref() == Some(name))
            .and_then(|l| l.property_value.clone())
    };
    let from_errors: Vec<InvalidValue> = parsed
        .errors
        .iter()
        .filter_map(|d| {
            let property = d.context.as_ref()?.property_name.first()?.clone();
            let message = d.message.clone().unwrap_or_default();
            Some(InvalidValue {
                value: value_of(&property),
                reason: d.code.clone().unwrap_or_default(),
                allowed: allowed_options(&message),
                property,
                message,
            })
        })
        .collect();
    if !from_errors.is_empty() {
        return from_errors;
    }
    legacy
        .into_iter()
        .filter_map(|l| {
            let message = l.message.unwrap_or_default();
            Some(InvalidValue {
                property: l.name?,
                value: l.property_value,
                reason: l.error.unwrap_or_default(),
                allowed: allowed_options(&message),
                message,
            })
        })
        .collect()
}

/// The `value: "..."` entries of an `INVALID_OPTION` message, in order.
fn allowed_options(message: &str) -> Vec<String> {
    message
        .split("value: \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(value, _)| value.to_owned()))
        .collect()
}

/// A property that does not exist or cannot be written is the mapping's fault; any other
/// refusal is the value's.
fn validation_code(invalid: &[InvalidValue]) -> ErrorCode {
    let mapping_fault = invalid.iter().any(|i| {
        matches!(
            i.reason.as_str(),
            "PROPERTY_DOESNT_EXIST" | "READ_ONLY_VALUE"
        )
    });
    if mapping_fault {
        ErrorCode::FieldMappingInvalid
    } else {
        ErrorCode::InvalidPropertyValue
    }
}

/// The id after `Existing ID: ` in a 409 for a contact's email.
fn existing_id(parsed: &ErrorBody) -> Option<SourceId> {
    let message = parsed.message.as_deref()?;
    let digits: String = message
        .split_once(EXISTING_ID_PREFIX)?
        .1
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    SourceId::parse(digits).ok()
}

/// Classifies a failed CRM call.
pub fn classify_api(status: u16, body: &str, retry_after: Option<Duration>) -> ProviderError {
    let parsed = parse_body(body);
    let invalid = if status == 400 {
        invalid_values(&parsed)
    } else {
        Vec::new()
    };
    let existing = (status == 409).then(|| existing_id(&parsed)).flatten();
    let code = match status {
        _ if is_auth_failure(status) => ErrorCode::OauthRevoked,
        400 if !invalid.is_empty() => validation_code(&invalid),
        403 => ErrorCode::PermissionDenied,
        404 => ErrorCode::SourceDeleted,
        409 if existing.is_some() => ErrorCode::ContactExists,
        429 => ErrorCode::RateLimited,
        _ if is_transient(status) => ErrorCode::ProviderUnavailable,
        _ => match parsed.category.as_deref() {
            Some("MISSING_SCOPES") => ErrorCode::PermissionDenied,
            Some("RATE_LIMITS") => ErrorCode::RateLimited,
            Some("OBJECT_NOT_FOUND") => ErrorCode::SourceDeleted,
            Some("INVALID_AUTHENTICATION" | "EXPIRED_AUTHENTICATION") => ErrorCode::OauthRevoked,
            // 400 validation and the like: our request was wrong.
            _ => ErrorCode::Internal,
        },
    };
    let mut e = with_response(code, status, body, &parsed);
    if code == ErrorCode::RateLimited {
        e.retry_after = retry_after;
    }
    if !invalid.is_empty() || existing.is_some() {
        e.refusal = Some(Box::new(Refusal {
            invalid_values: invalid,
            existing_id: existing,
        }));
    }
    e
}

/// Classifies a failed call to the token endpoint: a refused grant (revoked or unknown
/// refresh token, used or expired code) means the connection needs re-authorization.
pub fn classify_token(status: u16, body: &str, retry_after: Option<Duration>) -> ProviderError {
    let parsed = parse_body(body);
    let refused_grant = parsed.error.as_deref() == Some("invalid_grant")
        || matches!(
            parsed.status.as_deref(),
            Some("BAD_REFRESH_TOKEN" | "BAD_AUTH_CODE" | "EXPIRED_AUTH_CODE")
        );
    if ((400..500).contains(&status) && refused_grant) || is_auth_failure(status) {
        return with_response(ErrorCode::OauthRevoked, status, body, &parsed);
    }
    classify_api(status, body, retry_after)
}

/// A transport failure (no HTTP answer). The URL is left out: it can carry a token.
pub fn transport(e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let detail = format!("{}", DisplayWithoutUrl(e));
    ProviderError::new(
        ErrorCode::ProviderUnavailable,
        format!("request to HubSpot {kind}: {detail}"),
    )
}

struct DisplayWithoutUrl<'a>(&'a reqwest::Error);

impl std::fmt::Display for DisplayWithoutUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(self.0);
        let mut first = true;
        while let Some(s) = source {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{s}")?;
            first = false;
            source = s.source();
        }
        if first {
            f.write_str("no detail")?;
        }
        Ok(())
    }
}

pub fn internal(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorCode::Internal, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_scopes_are_named_from_the_error_body() {
        let body = r#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","correlationId":"f1abc06c","errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.objects.companies.read"]}}],"category":"MISSING_SCOPES"}"#;
        let e = classify_api(403, body, None);
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        assert_eq!(
            e.missing_scopes,
            vec!["crm.objects.companies.read".to_owned()]
        );
        assert!(classify_api(404, body, None).missing_scopes.is_empty());
    }

    #[test]
    fn statuses_and_categories_map_to_the_logs_codes() {
        let cases = [
            (
                401,
                r#"{"status":"error","message":"The OAuth token used to make this call expired 0 second(s) ago.","category":"EXPIRED_AUTHENTICATION"}"#,
                ErrorCode::OauthRevoked,
            ),
            (
                403,
                r#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","category":"MISSING_SCOPES"}"#,
                ErrorCode::PermissionDenied,
            ),
            (
                404,
                r#"{"status":"error","message":"resource not found"}"#,
                ErrorCode::SourceDeleted,
            ),
            (404, "", ErrorCode::SourceDeleted),
            (
                429,
                r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}"#,
                ErrorCode::RateLimited,
            ),
            (500, "oops", ErrorCode::ProviderUnavailable),
            (502, "", ErrorCode::ProviderUnavailable),
            (524, "", ErrorCode::ProviderUnavailable),
            (477, "", ErrorCode::ProviderUnavailable),
            (530, "", ErrorCode::OauthRevoked),
            (
                400,
                r#"{"status":"error","message":"bad filter","category":"VALIDATION_ERROR"}"#,
                ErrorCode::Internal,
            ),
        ];
        for (status, body, code) in cases {
            let e = classify_api(status, body, None);
            assert_eq!(e.code, code, "{status} {body}");
            assert_eq!(e.status, Some(status));
        }
    }

    #[test]
    fn the_message_names_the_category_and_the_body_is_kept() {
        let body = r#"{"status":"error","message":"This app hasn't been granted all required scopes to make this call.","category":"MISSING_SCOPES"}"#;
        let e = classify_api(403, body, None);
        assert!(e.message.contains("MISSING_SCOPES"), "{}", e.message);
        assert_eq!(e.body.as_deref(), Some(body));
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let body = "é".repeat(3000);
        let kept = classify_api(500, &body, None).body.expect("kept");
        assert!(kept.len() <= MAX_KEPT_BODY + "…".len());
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn retry_after_is_carried_only_by_rate_limits() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(classify_api(429, "", wait).retry_after, wait);
        assert_eq!(classify_api(500, "", wait).retry_after, None);
    }

    #[test]
    fn a_refused_refresh_is_oauth_revoked_in_both_body_styles() {
        let legacy = r#"{"status":"BAD_REFRESH_TOKEN","message":"missing or invalid refresh token","correlationId":"x"}"#;
        let rfc = r#"{"error":"invalid_grant","error_description":"refresh token is invalid, expired or revoked","status":"BAD_REFRESH_TOKEN","message":"refresh token is invalid, expired or revoked"}"#;
        for body in [legacy, rfc] {
            assert_eq!(
                classify_token(400, body, None).code,
                ErrorCode::OauthRevoked
            );
        }
        assert_eq!(
            classify_token(400, r#"{"error":"invalid_client"}"#, None).code,
            ErrorCode::Internal
        );
        assert_eq!(
            classify_token(503, "", None).code,
            ErrorCode::ProviderUnavailable
        );
    }

    #[test]
    fn a_refused_value_names_the_property_the_value_and_the_options() {
        let body = r#"{"status":"error","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Nope was not one of the allowed options: [label: \\\"Lead\\\"\\nvalue: \\\"lead\\\"\\ndisplay_order: 1\\nhidden: false\\nread_only: false\\n, label: \\\"Customer\\\"\\nvalue: \\\"customer\\\"\\ndisplay_order: 2\\nhidden: false\\nread_only: false\\n]\",\"error\":\"INVALID_OPTION\",\"name\":\"lifecyclestage\",\"propertyValue\":\"Nope\"}]","errors":[{"message":"Nope was not one of the allowed options: [label: \"Lead\"\nvalue: \"lead\"\ndisplay_order: 1\nhidden: false\nread_only: false\n, label: \"Customer\"\nvalue: \"customer\"\ndisplay_order: 2\nhidden: false\nread_only: false\n]","code":"INVALID_OPTION","context":{"propertyName":["lifecyclestage"]}}],"category":"VALIDATION_ERROR"}"#;
        let e = classify_api(400, body, None);
        assert_eq!(e.code, ErrorCode::InvalidPropertyValue);
        assert_eq!(e.invalid_values().len(), 1);
        let invalid = &e.invalid_values()[0];
        assert_eq!(invalid.property, "lifecyclestage");
        assert_eq!(invalid.value.as_deref(), Some("Nope"));
        assert_eq!(
            invalid.allowed,
            vec!["lead".to_owned(), "customer".to_owned()]
        );
    }

    #[test]
    fn a_property_that_does_not_exist_is_the_mappings_fault_even_in_the_older_form() {
        let body = r#"{"status":"error","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"testproperty\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"testproperty\"}]","category":"VALIDATION_ERROR"}"#;
        let e = classify_api(400, body, None);
        assert_eq!(e.code, ErrorCode::FieldMappingInvalid);
        assert_eq!(e.invalid_values()[0].property, "testproperty");
        // a 400 that names no property stays ours
        let plain = classify_api(
            400,
            r#"{"status":"error","message":"One or more associations are invalid","category":"VALIDATION_ERROR"}"#,
            None,
        );
        assert_eq!(plain.code, ErrorCode::Internal);
    }

    #[test]
    fn an_existing_email_is_contact_exists_with_the_existing_id() {
        let body = r#"{"status":"error","message":"Contact already exists. Existing ID: 37765128953","correlationId":"2dea5219","category":"CONFLICT"}"#;
        let e = classify_api(409, body, None);
        assert_eq!(e.code, ErrorCode::ContactExists);
        assert_eq!(e.existing_id().map(SourceId::as_str), Some("37765128953"));
        assert_eq!(
            classify_api(409, r#"{"category":"CONFLICT"}"#, None).code,
            ErrorCode::Internal
        );
    }
}

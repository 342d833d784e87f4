//! Stripe webhooks: `Stripe-Signature` verification over the raw body (contract §5.3) and
//! the few event fields intake needs to dedupe and route.
//!
//! The signed payload is `"<t>.<raw body>"`; the HMAC-SHA256 key is the whole endpoint
//! secret string (`whsec_...` included) as UTF-8, not base64-decoded. Only `v1` schemes
//! count (a `v0`-only header fails), any `v1` may match any secret (rotation), and header
//! elements are not trimmed, as in Stripe's own libraries.

use std::time::Duration;

use connector::{ChangeKind, ObjectKind, ProviderAccountId, Secret, Timestamp, WebhookEventId};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The HTTP header Stripe signs deliveries with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Stripe's libraries' default tolerance.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Deauthorization of a Connect / OAuth account: the tenant's connection is revoked.
pub const DEAUTHORIZED_EVENT: &str = "account.application.deauthorized";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance window")]
    StaleTimestamp,
    #[error("no v1 signature matches the payload with any configured secret")]
    BadSignature,
}

impl WebhookError {
    /// The variant's name, as the `stripe-verify-signature` tool prints it.
    pub fn name(self) -> &'static str {
        match self {
            WebhookError::MissingHeader => "MissingHeader",
            WebhookError::Malformed => "Malformed",
            WebhookError::StaleTimestamp => "StaleTimestamp",
            WebhookError::BadSignature => "BadSignature",
        }
    }
}

struct SignatureHeader<'a> {
    timestamp: i64,
    v1: Vec<&'a str>,
}

fn parse_header(header: &str) -> Result<SignatureHeader<'_>, WebhookError> {
    if header.trim().is_empty() {
        return Err(WebhookError::MissingHeader);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for element in header.split(',') {
        let Some((key, value)) = element.split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::Malformed);
                }
                timestamp = Some(value.parse::<i64>().map_err(|_| WebhookError::Malformed)?);
            }
            "v1" => v1.push(value),
            _ => {}
        }
    }
    match timestamp {
        Some(timestamp) if !v1.is_empty() => Ok(SignatureHeader { timestamp, v1 }),
        _ => Err(WebhookError::Malformed),
    }
}

/// `hex(HMAC-SHA256(secret, "<t>.<payload>"))`, as Stripe signs.
pub fn compute_signature(secret: &Secret, timestamp: i64, payload: &[u8]) -> String {
    hex::encode(signature_bytes(secret, timestamp, payload))
}

fn signature_bytes(secret: &Secret, timestamp: i64, payload: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// A `Stripe-Signature` header for `payload` with one `v1` per secret (for tests and the
/// sandbox side of contract tests).
pub fn signature_header(payload: &[u8], secrets: &[Secret], timestamp: i64) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&compute_signature(secret, timestamp, payload));
    }
    header
}

/// Verifies a delivery: some `v1` in `signature_header` is the HMAC of `payload` (the raw
/// body, byte for byte) under some secret in `secrets`, and its timestamp is within
/// `tolerance` of `now` in either direction (stricter than Stripe's libraries, which only
/// reject old ones). The signature is checked first, so `StaleTimestamp` means an
/// authentic but late (or replayed) delivery.
pub fn verify(
    payload: &[u8],
    signature_header: &str,
    secrets: &[Secret],
    tolerance: Duration,
    now: Timestamp,
) -> Result<(), WebhookError> {
    let header = parse_header(signature_header)?;
    let candidates: Vec<Vec<u8>> = header
        .v1
        .iter()
        .filter_map(|v| hex::decode(v).ok())
        .collect();
    let mut matched = false;
    for secret in secrets {
        let expected = signature_bytes(secret, header.timestamp, payload);
        for candidate in &candidates {
            // Constant time per comparison; we do not stop early on a match either.
            matched |= bool::from(expected.ct_eq(candidate));
        }
    }
    if !matched {
        return Err(WebhookError::BadSignature);
    }
    let age = now.as_secs().abs_diff(header.timestamp);
    if age > tolerance.as_secs() {
        return Err(WebhookError::StaleTimestamp);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventParseError {
    #[error("the event is not JSON: {0}")]
    NotJson(String),
    #[error("the event has an invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A v2 "thin" event notification (`object: "v2.core.event"`): not handled here.
    #[error("thin (v2) event notifications are not supported")]
    ThinEvent,
}

/// What intake keeps of a Stripe event: enough to dedupe, route and enqueue; the record
/// worker re-fetches the object itself (the payload is a notification, rendered at the
/// account's API version, not ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    pub id: WebhookEventId,
    pub event_type: String,
    pub created: Timestamp,
    pub livemode: bool,
    /// The connected account, on Connect (OAuth) deliveries.
    pub account: Option<ProviderAccountId>,
    pub api_version: Option<String>,
    /// `data.object.id` and `data.object.object`.
    pub object_id: Option<String>,
    pub object_type: Option<String>,
    /// The Stripe customer the event concerns: the object for `customer.*`, its `customer`
    /// field for subscriptions, discounts and invoices.
    pub customer_id: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(default)]
    object: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    data: Option<RawData>,
}

#[derive(Deserialize)]
struct RawData {
    object: serde_json::Value,
}

/// Parses a verified payload.
pub fn parse_event(raw: &[u8]) -> Result<StripeEvent, EventParseError> {
    let event: RawEvent =
        serde_json::from_slice(raw).map_err(|e| EventParseError::NotJson(e.to_string()))?;
    if event.object.as_deref() == Some("v2.core.event") {
        return Err(EventParseError::ThinEvent);
    }
    let invalid = |field: &'static str| {
        move |e: connector::ParseError| EventParseError::InvalidField {
            field,
            reason: e.reason,
        }
    };
    let id = WebhookEventId::parse(event.id).map_err(invalid("id"))?;
    let account = event
        .account
        .map(ProviderAccountId::parse)
        .transpose()
        .map_err(invalid("account"))?;
    let object = event.data.map(|d| d.object);
    let field = |name: &str| {
        object
            .as_ref()
            .and_then(|o| o.get(name))
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                // An expanded reference: take its id.
                serde_json::Value::Object(o) => {
                    o.get("id").and_then(|i| i.as_str()).map(str::to_owned)
                }
                _ => None,
            })
    };
    let object_id = field("id");
    let object_type = field("object");
    let customer_id = if object_type.as_deref() == Some("customer") {
        object_id.clone()
    } else {
        field("customer")
    };
    Ok(StripeEvent {
        id,
        event_type: event.event_type,
        created: Timestamp::from_secs(event.created),
        livemode: event.livemode,
        account,
        api_version: event.api_version,
        object_id,
        object_type,
        customer_id,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {event} event arrived for a {connection} connection")]
pub struct LivemodeMismatch {
    pub event: &'static str,
    pub connection: &'static str,
}

fn mode(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
}

impl StripeEvent {
    pub fn is_deauthorization(&self) -> bool {
        self.event_type == DEAUTHORIZED_EVENT
    }

    /// Connect endpoints receive test and live events alike: drop the ones whose mode is
    /// not the connection's.
    pub fn check_livemode(&self, connection_livemode: bool) -> Result<(), LivemodeMismatch> {
        if self.livemode == connection_livemode {
            Ok(())
        } else {
            Err(LivemodeMismatch {
                event: mode(self.livemode),
                connection: mode(connection_livemode),
            })
        }
    }

    /// What changed, for the record job: deletions by event type (never by a `deleted`
    /// flag in the payload); everything else is an update to re-fetch.
    pub fn change_kind(&self) -> ChangeKind {
        if self.event_type == "customer.deleted" {
            ChangeKind::Deleted
        } else if self.event_type == "customer.created" {
            ChangeKind::Created
        } else {
            ChangeKind::Updated
        }
    }

    /// The record job this event asks for: every billing-relevant event re-computes its
    /// customer (`BillingCustomer`, keyed by the Stripe customer id). `None` for events that
    /// do not concern one customer (prices, coupons, deauthorization).
    pub fn record_target(&self) -> Option<(ObjectKind, &str)> {
        let relevant = ["customer.", "invoice.", "subscription_schedule."]
            .iter()
            .any(|prefix| self.event_type.starts_with(prefix));
        if !relevant {
            return None;
        }
        self.customer_id
            .as_deref()
            .map(|id| (ObjectKind::BillingCustomer, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const PAYLOAD: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const T: i64 = 1_700_000_000;
    const V1: &str = "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";
    const ROTATED_V1: &str = "e2bff083fec7577d1157ff09cbdb4504baf653937eef5e4dad80ea63dbcf65e3";
    const V0: &str = "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";

    fn secrets(names: &[&str]) -> Vec<Secret> {
        names.iter().map(|s| Secret::new(*s)).collect()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn the_contracts_test_vector_verifies() {
        let header = format!("t={T},v1={V1}");
        assert_eq!(compute_signature(&Secret::new(SECRET), T, PAYLOAD), V1);
        assert_eq!(
            verify(
                PAYLOAD,
                &header,
                &secrets(&[SECRET]),
                DEFAULT_TOLERANCE,
                at(T)
            ),
            Ok(())
        );
    }

    #[test]
    fn the_contracts_utf8_test_vector_matches() {
        let payload = r#"{"id":"evt_1","object":"event","data":{"object":{"id":"cus_1","object":"customer","name":"Zoë"}}}"#;
        assert_eq!(
            compute_signature(&Secret::new(SECRET), T, payload.as_bytes()),
            "3d58792416a6272db17c8fc2c033a3725103fb3fe3cffbb01875de2638401af7"
        );
    }

    #[test]
    fn a_rotation_header_verifies_with_either_secret() {
        assert_eq!(
            compute_signature(&Secret::new("whsec_rotated_secret"), T, PAYLOAD),
            ROTATED_V1
        );
        let header = format!("t={T},v1={ROTATED_V1},v1={V1},v0={V0}");
        for secret in ["whsec_rotated_secret", SECRET] {
            assert_eq!(
                verify(
                    PAYLOAD,
                    &header,
                    &secrets(&[secret]),
                    DEFAULT_TOLERANCE,
                    at(T)
                ),
                Ok(()),
                "{secret}"
            );
        }
        assert_eq!(
            verify(
                PAYLOAD,
                &header,
                &secrets(&["whsec_other", SECRET]),
                DEFAULT_TOLERANCE,
                at(T)
            ),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_payload_is_rejected() {
        let header = format!("t={T},v1={V1}");
        let tampered = br#"{"id":"evt_test_webhook","object":"evenT"}"#;
        assert_eq!(
            verify(
                tampered,
                &header,
                &secrets(&[SECRET]),
                DEFAULT_TOLERANCE,
                at(T)
            ),
            Err(WebhookError::BadSignature)
        );
        let reserialised = br#"{"id": "evt_test_webhook", "object": "event"}"#;
        assert_eq!(
            verify(
                reserialised,
                &header,
                &secrets(&[SECRET]),
                DEFAULT_TOLERANCE,
                at(T)
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn the_wrong_secret_is_rejected() {
        let header = format!("t={T},v1={V1}");
        assert_eq!(
            verify(
                PAYLOAD,
                &header,
                &secrets(&["whsec_nope"]),
                DEFAULT_TOLERANCE,
                at(T)
            ),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(PAYLOAD, &header, &[], DEFAULT_TOLERANCE, at(T)),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_stale_timestamp_is_rejected() {
        let header = format!("t={T},v1={V1}");
        let s = secrets(&[SECRET]);
        assert_eq!(
            verify(PAYLOAD, &header, &s, DEFAULT_TOLERANCE, at(T + 300)),
            Ok(())
        );
        assert_eq!(
            verify(PAYLOAD, &header, &s, DEFAULT_TOLERANCE, at(T + 301)),
            Err(WebhookError::StaleTimestamp)
        );
    }

    #[test]
    fn a_timestamp_from_the_future_is_rejected() {
        let header = format!("t={T},v1={V1}");
        let s = secrets(&[SECRET]);
        assert_eq!(
            verify(PAYLOAD, &header, &s, DEFAULT_TOLERANCE, at(T - 301)),
            Err(WebhookError::StaleTimestamp)
        );
    }

    #[test]
    fn a_timestamp_that_was_changed_breaks_the_signature() {
        let header = format!("t={},v1={V1}", T + 1);
        assert_eq!(
            verify(
                PAYLOAD,
                &header,
                &secrets(&[SECRET]),
                DEFAULT_TOLERANCE,
                at(T)
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_missing_header_is_its_own_error() {
        assert_eq!(
            verify(PAYLOAD, "", &secrets(&[SECRET]), DEFAULT_TOLERANCE, at(T)),
            Err(WebhookError::MissingHeader)
        );
    }

    #[test]
    fn headers_without_a_timestamp_or_a_v1_are_malformed() {
        let s = secrets(&[SECRET]);
        for header in [
            format!("v1={V1}"),
            format!("t={T},v0={V0}"),
            format!("t=soon,v1={V1}"),
            format!("t={T},t={T},v1={V1}"),
            // Elements are not trimmed, as in Stripe's libraries: " v1" is not "v1".
            format!("t={T}, v1={V1}"),
            "garbage".to_owned(),
        ] {
            assert_eq!(
                verify(PAYLOAD, &header, &s, DEFAULT_TOLERANCE, at(T)),
                Err(WebhookError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn a_signature_that_is_not_hex_does_not_match() {
        let header = format!("t={T},v1=zz{}", &V1[2..]);
        assert_eq!(
            verify(
                PAYLOAD,
                &header,
                &secrets(&[SECRET]),
                DEFAULT_TOLERANCE,
                at(T)
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn headers_we_generate_verify() {
        let s = secrets(&["whsec_a", "whsec_b"]);
        let header = signature_header(PAYLOAD, &s, T);
        assert_eq!(
            verify(PAYLOAD, &header, &s[1..], DEFAULT_TOLERANCE, at(T)),
            Ok(())
        );
    }

    #[test]
    fn a_subscription_event_parses_with_its_customer() {
        let raw = br#"{"id":"evt_1","object":"event","account":"acct_9","api_version":"2026-07-29.dahlia","created":1700000000,"livemode":true,"type":"customer.subscription.updated","data":{"object":{"id":"sub_1","object":"subscription","customer":"cus_7"},"previous_attributes":{}}}"#;
        let event = parse_event(raw).expect("parses");
        assert_eq!(event.id.as_str(), "evt_1");
        assert_eq!(event.account.as_ref().map(|a| a.as_str()), Some("acct_9"));
        assert_eq!(event.object_id.as_deref(), Some("sub_1"));
        assert_eq!(event.object_type.as_deref(), Some("subscription"));
        assert_eq!(event.customer_id.as_deref(), Some("cus_7"));
        assert_eq!(event.created, Timestamp::from_secs(1_700_000_000));
        assert_eq!(
            event.record_target(),
            Some((ObjectKind::BillingCustomer, "cus_7"))
        );
        assert_eq!(event.change_kind(), ChangeKind::Updated);
        assert!(event.check_livemode(true).is_ok());
        assert!(event.check_livemode(false).is_err());
    }

    #[test]
    fn a_customer_deleted_event_is_a_deletion_of_that_customer() {
        let raw = br#"{"id":"evt_2","object":"event","created":1,"livemode":false,"type":"customer.deleted","data":{"object":{"id":"cus_7","object":"customer","deleted":true}}}"#;
        let event = parse_event(raw).expect("parses");
        assert_eq!(event.change_kind(), ChangeKind::Deleted);
        assert_eq!(
            event.record_target(),
            Some((ObjectKind::BillingCustomer, "cus_7"))
        );
    }

    #[test]
    fn a_deauthorization_is_recognised() {
        let raw = br#"{"id":"evt_3","object":"event","account":"acct_1","created":1,"livemode":true,"type":"account.application.deauthorized","data":{"object":{"id":"ca_1","object":"application","name":null}}}"#;
        let event = parse_event(raw).expect("parses");
        assert!(event.is_deauthorization());
        assert_eq!(event.record_target(), None);
    }

    #[test]
    fn stripes_example_event_parses() {
        let all: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/fixtures3.json"))
                .expect("fixtures parse");
        let raw = serde_json::to_vec(&all["resources"]["event"]).expect("serializes");
        let event = parse_event(&raw).expect("parses");
        assert_eq!(event.event_type, "plan.created");
        assert_eq!(event.record_target(), None);
    }

    #[test]
    fn bad_events_are_errors_not_panics() {
        assert!(matches!(
            parse_event(b"{"),
            Err(EventParseError::NotJson(_))
        ));
        assert!(matches!(
            parse_event(br#"{"id":"evt 1","type":"x","created":1}"#),
            Err(EventParseError::InvalidField { field: "id", .. })
        ));
        assert_eq!(
            parse_event(br#"{"id":"evt_1","object":"v2.core.event","type":"v1.customer.created","created":1}"#),
            Err(EventParseError::ThinEvent)
        );
    }
}

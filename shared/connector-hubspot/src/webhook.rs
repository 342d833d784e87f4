//! HubSpot webhook requests: signature checks (v3, and the legacy v1/v2 still sent) over
//! the raw body, and parsing of the event batch.
//!
//! Verify before parsing, always on the bytes as received: re-serialized JSON does not
//! hash the same.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use connector::{
    ChangeKind, ObjectKind, ProviderAccountId, Secret, SourceId, Timestamp, WebhookEventId,
};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const HEADER_SIGNATURE_V3: &str = "X-HubSpot-Signature-v3";
pub const HEADER_TIMESTAMP: &str = "X-HubSpot-Request-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-HubSpot-Signature";
pub const HEADER_SIGNATURE_VERSION: &str = "X-HubSpot-Signature-Version";

/// How far a v3 timestamp may be from our clock, either way.
pub const MAX_TIMESTAMP_SKEW_MS: i64 = 5 * 60 * 1000;
/// HubSpot sends at most 100 events per request.
pub const MAX_EVENTS_PER_REQUEST: usize = 100;

/// Why a webhook request was refused. The intake answers 401 for the signature errors
/// and 400 for `Malformed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("timestamp is older than 5 minutes or in the future")]
    StaleTimestamp,
    #[error("signature does not match")]
    BadSignature,
    #[error("malformed webhook request: {0}")]
    Malformed(String),
}

impl WebhookError {
    /// A stable name for logs and the CLI.
    pub fn name(&self) -> &'static str {
        match self {
            WebhookError::MissingHeader(_) => "MissingHeader",
            WebhookError::StaleTimestamp => "StaleTimestamp",
            WebhookError::BadSignature => "BadSignature",
            WebhookError::Malformed(_) => "Malformed",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The percent-escapes HubSpot decodes in the URI before signing (v3), and only these.
const DECODED_IN_URI: &[u8] = b":/?@!$'()*,;";

/// The URI exactly as HubSpot signs it for v3: the listed reserved characters decoded,
/// every other escape left alone.
pub fn v3_signed_uri(uri: &str) -> String {
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|b| hex_value(*b)),
                bytes.get(i + 2).and_then(|b| hex_value(*b)),
            )
        {
            let decoded = hi * 16 + lo;
            if DECODED_IN_URI.contains(&decoded) {
                out.push(decoded);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII escapes were replaced by ASCII bytes, so this stays valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| uri.to_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The v3 signature HubSpot would send: base64(HMAC-SHA256(secret, method + uri + body + timestamp)).
pub fn sign_v3(
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: &str,
    client_secret: &Secret,
) -> String {
    v3_mac(method, uri, body, timestamp_ms, client_secret)
        .map(|mac| STANDARD.encode(mac))
        .unwrap_or_default()
}

/// `None` only if HMAC refused the key, which it does for no length.
fn v3_mac(
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: &str,
    client_secret: &Secret,
) -> Option<Vec<u8>> {
    let mut mac = HmacSha256::new_from_slice(client_secret.expose().as_bytes()).ok()?;
    mac.update(method.to_ascii_uppercase().as_bytes());
    mac.update(v3_signed_uri(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

/// The v1 signature: hex(SHA-256(secret + body)).
pub fn sign_v1(body: &[u8], client_secret: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(client_secret.expose().as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// The v2 signature: hex(SHA-256(secret + method + uri + body)), the URI as called.
pub fn sign_v2(method: &str, uri: &str, body: &[u8], client_secret: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(client_secret.expose().as_bytes());
    h.update(method.to_ascii_uppercase().as_bytes());
    h.update(uri.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// `b` is the expected value: an empty one never matches.
fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    !b.is_empty() && a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Checks a v3 signature. `full_uri` is the URL HubSpot called (scheme, public host,
/// path and query as received); `now` is our clock.
pub fn verify_v3(
    method: &str,
    full_uri: &str,
    raw_body: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    client_secret: &Secret,
    now: Timestamp,
) -> Result<(), WebhookError> {
    let signature = signature_header.ok_or(WebhookError::MissingHeader(HEADER_SIGNATURE_V3))?;
    let timestamp = timestamp_header.ok_or(WebhookError::MissingHeader(HEADER_TIMESTAMP))?;
    let timestamp = timestamp.trim();
    let ts_ms: i64 = match timestamp.parse() {
        Ok(ms) if timestamp.bytes().all(|b| b.is_ascii_digit()) => ms,
        _ => {
            return Err(WebhookError::Malformed(format!(
                "{HEADER_TIMESTAMP} is not epoch milliseconds"
            )));
        }
    };
    if (now.as_millis() - ts_ms).abs() > MAX_TIMESTAMP_SKEW_MS {
        return Err(WebhookError::StaleTimestamp);
    }
    let given = STANDARD
        .decode(signature.trim())
        .map_err(|_| WebhookError::BadSignature)?;
    let expected = v3_mac(method, full_uri, raw_body, timestamp, client_secret)
        .ok_or(WebhookError::BadSignature)?;
    if equal_in_constant_time(&given, &expected) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

fn verify_hex(signature: &str, expected_hex: &str) -> Result<(), WebhookError> {
    let given = hex::decode(signature.trim()).map_err(|_| WebhookError::BadSignature)?;
    let expected = hex::decode(expected_hex).map_err(|_| WebhookError::BadSignature)?;
    if equal_in_constant_time(&given, &expected) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// Checks a legacy v1 signature (no timestamp: replays are caught by event dedupe).
pub fn verify_v1(
    raw_body: &[u8],
    signature_header: Option<&str>,
    client_secret: &Secret,
) -> Result<(), WebhookError> {
    let signature = signature_header.ok_or(WebhookError::MissingHeader(HEADER_SIGNATURE))?;
    verify_hex(signature, &sign_v1(raw_body, client_secret))
}

/// Checks a legacy v2 signature; the URI must be exactly the one HubSpot called.
pub fn verify_v2(
    method: &str,
    full_uri: &str,
    raw_body: &[u8],
    signature_header: Option<&str>,
    client_secret: &Secret,
) -> Result<(), WebhookError> {
    let signature = signature_header.ok_or(WebhookError::MissingHeader(HEADER_SIGNATURE))?;
    verify_hex(
        signature,
        &sign_v2(method, full_uri, raw_body, client_secret),
    )
}

/// The signature headers of one request. Build it with [`SignatureHeaders::from_lookup`]
/// from whatever header map the caller has (names are matched case-insensitively there).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct SignatureHeaders<'a> {
    pub signature_v3: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub signature_version: Option<&'a str>,
}

impl fmt::Debug for SignatureHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeaders")
            .field("signature_v3", &self.signature_v3.is_some())
            .field("timestamp", &self.timestamp)
            .field("signature", &self.signature.is_some())
            .field("signature_version", &self.signature_version)
            .finish()
    }
}

impl<'a> SignatureHeaders<'a> {
    /// `lookup` gets each header name as HubSpot spells it and should match it
    /// case-insensitively (HTTP header maps do).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            signature_v3: lookup(HEADER_SIGNATURE_V3),
            timestamp: lookup(HEADER_TIMESTAMP),
            signature: lookup(HEADER_SIGNATURE),
            signature_version: lookup(HEADER_SIGNATURE_VERSION),
        }
    }
}

/// Which scheme a request was checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    V1,
    V2,
    V3,
}

/// Verifies a request by the strongest signature it carries: v3 when present (it has a
/// timestamp), else v1/v2 as `X-HubSpot-Signature-Version` says (v1 when absent).
pub fn verify_request(
    method: &str,
    full_uri: &str,
    raw_body: &[u8],
    headers: &SignatureHeaders<'_>,
    client_secret: &Secret,
    now: Timestamp,
) -> Result<SignatureVersion, WebhookError> {
    if headers.signature_v3.is_some() {
        verify_v3(
            method,
            full_uri,
            raw_body,
            headers.timestamp,
            headers.signature_v3,
            client_secret,
            now,
        )?;
        return Ok(SignatureVersion::V3);
    }
    if headers.signature.is_none() {
        return Err(WebhookError::MissingHeader(HEADER_SIGNATURE_V3));
    }
    match headers.signature_version.map(str::trim) {
        None | Some("v1" | "V1") => {
            verify_v1(raw_body, headers.signature, client_secret)?;
            Ok(SignatureVersion::V1)
        }
        Some("v2" | "V2") => {
            verify_v2(method, full_uri, raw_body, headers.signature, client_secret)?;
            Ok(SignatureVersion::V2)
        }
        Some(other) => Err(WebhookError::Malformed(format!(
            "unknown {HEADER_SIGNATURE_VERSION} {other:?}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Events

/// One association added or removed (`*.associationChange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationEvent {
    /// HubSpot's name, e.g. `COMPANY_TO_CONTACT`.
    pub association_type: String,
    pub from_object_id: SourceId,
    pub to_object_id: SourceId,
    pub removed: bool,
    pub is_primary: bool,
}

/// One event of a webhook batch, for a company or a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSpotEvent {
    /// The dedupe key: HubSpot's `eventId` is not guaranteed unique, so this combines it
    /// with the portal, object, time and a digest of the change. A redelivery of the same
    /// event (another `attemptNumber`) gets the same key.
    pub event_id: WebhookEventId,
    /// HubSpot's own `eventId`.
    pub hubspot_event_id: u64,
    pub occurred_at: Timestamp,
    pub portal_id: ProviderAccountId,
    pub object: ObjectKind,
    pub object_id: SourceId,
    pub change: ChangeKind,
    /// E.g. `company.propertyChange`.
    pub subscription_type: String,
    pub attempt_number: u32,
    pub property_name: Option<String>,
    /// The value a `propertyChange` set.
    pub property_value: Option<String>,
    pub change_source: Option<String>,
    /// The change was made with the receiving app's own token (`changeSource`
    /// `INTEGRATION` and `sourceId` our app id): a write of ours, perhaps its echo.
    pub by_this_app: bool,
    pub merged_object_ids: Vec<SourceId>,
    pub primary_object_id: Option<SourceId>,
    pub new_object_id: Option<SourceId>,
    pub association: Option<AssociationEvent>,
}

/// A number HubSpot may also send as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Text(String),
}

impl Number {
    fn as_u64(&self, field: &str) -> Result<u64, WebhookError> {
        match self {
            Number::Int(n) => Ok(*n),
            Number::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| WebhookError::Malformed(format!("{field} is not a number"))),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    event_id: Number,
    portal_id: Number,
    occurred_at: Number,
    object_id: Number,
    subscription_type: Option<String>,
    /// The docs' table calls the field `eventType`.
    event_type: Option<String>,
    object_type_id: Option<String>,
    #[serde(default)]
    attempt_number: Option<u32>,
    property_name: Option<String>,
    property_value: Option<serde_json::Value>,
    change_source: Option<String>,
    app_id: Option<Number>,
    source_id: Option<serde_json::Value>,
    primary_object_id: Option<Number>,
    #[serde(default)]
    merged_object_ids: Vec<Number>,
    new_object_id: Option<Number>,
    association_type: Option<String>,
    from_object_id: Option<Number>,
    to_object_id: Option<Number>,
    association_removed: Option<bool>,
    is_primary_association: Option<bool>,
}

fn source_id(n: &Number, field: &str) -> Result<SourceId, WebhookError> {
    SourceId::parse(n.as_u64(field)?.to_string())
        .map_err(|e| WebhookError::Malformed(e.to_string()))
}

fn object_kind(prefix: &str, object_type_id: Option<&str>) -> Option<ObjectKind> {
    match (prefix, object_type_id) {
        ("company", _) | ("object", Some("0-2")) => Some(ObjectKind::Company),
        ("contact", _) | ("object", Some("0-1")) => Some(ObjectKind::Contact),
        _ => None,
    }
}

fn change_kind(action: &str) -> Option<ChangeKind> {
    Some(match action {
        "creation" => ChangeKind::Created,
        "deletion" | "privacyDeletion" => ChangeKind::Deleted,
        "propertyChange" => ChangeKind::Updated,
        "merge" => ChangeKind::Merged,
        "restore" => ChangeKind::Restored,
        "associationChange" => ChangeKind::AssociationChanged,
        _ => return None,
    })
}

impl RawEvent {
    /// `None` for events about objects or actions this service does not sync (deals,
    /// conversations, ...): they are valid, just not ours.
    fn into_event(self) -> Result<Option<HubSpotEvent>, WebhookError> {
        let subscription_type = self
            .subscription_type
            .or(self.event_type)
            .ok_or_else(|| WebhookError::Malformed("event without subscriptionType".into()))?;
        let Some((prefix, action)) = subscription_type.split_once('.') else {
            return Err(WebhookError::Malformed(format!(
                "subscriptionType {subscription_type:?} has no object prefix"
            )));
        };
        let (Some(object), Some(change)) = (
            object_kind(prefix, self.object_type_id.as_deref()),
            change_kind(action),
        ) else {
            return Ok(None);
        };
        let hubspot_event_id = self.event_id.as_u64("eventId")?;
        let portal = self.portal_id.as_u64("portalId")?;
        let occurred_at = i64::try_from(self.occurred_at.as_u64("occurredAt")?)
            .map_err(|_| WebhookError::Malformed("occurredAt is out of range".into()))?;
        let object_id = source_id(&self.object_id, "objectId")?;

        let property_value = match &self.property_value {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let mut digest = Sha256::new();
        for part in [
            subscription_type.as_str(),
            self.property_name.as_deref().unwrap_or(""),
            &property_value,
            self.association_type.as_deref().unwrap_or(""),
        ] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        if let Some(to) = &self.to_object_id {
            digest.update(to.as_u64("toObjectId")?.to_be_bytes());
        }
        if let Some(removed) = self.association_removed {
            digest.update([u8::from(removed)]);
        }
        let digest = hex::encode(&digest.finalize()[..8]);
        let event_id = WebhookEventId::parse(format!(
            "{portal}:{hubspot_event_id}:{occurred_at}:{object_id}:{digest}"
        ))
        .map_err(|e| WebhookError::Malformed(e.to_string()))?;

        let by_this_app = self.change_source.as_deref() == Some("INTEGRATION")
            && match (&self.app_id, &self.source_id) {
                (Some(app), Some(source)) => {
                    let source = match source {
                        serde_json::Value::String(s) => s.trim().to_owned(),
                        other => other.to_string(),
                    };
                    app.as_u64("appId")
                        .is_ok_and(|app| app.to_string() == source)
                }
                _ => false,
            };

        let association = match (
            &self.association_type,
            &self.from_object_id,
            &self.to_object_id,
        ) {
            (Some(kind), Some(from), Some(to)) => Some(AssociationEvent {
                association_type: kind.clone(),
                from_object_id: source_id(from, "fromObjectId")?,
                to_object_id: source_id(to, "toObjectId")?,
                removed: self.association_removed.unwrap_or(false),
                is_primary: self.is_primary_association.unwrap_or(false),
            }),
            _ => None,
        };

        Ok(Some(HubSpotEvent {
            event_id,
            hubspot_event_id,
            occurred_at: Timestamp::from_millis(occurred_at),
            portal_id: ProviderAccountId::parse(portal.to_string())
                .map_err(|e| WebhookError::Malformed(e.to_string()))?,
            object,
            object_id,
            change,
            subscription_type,
            attempt_number: self.attempt_number.unwrap_or(0),
            property_name: self.property_name,
            property_value: self.property_value.is_some().then_some(property_value),
            change_source: self.change_source,
            by_this_app,
            merged_object_ids: self
                .merged_object_ids
                .iter()
                .map(|n| source_id(n, "mergedObjectIds"))
                .collect::<Result<_, _>>()?,
            primary_object_id: self
                .primary_object_id
                .as_ref()
                .map(|n| source_id(n, "primaryObjectId"))
                .transpose()?,
            new_object_id: self
                .new_object_id
                .as_ref()
                .map(|n| source_id(n, "newObjectId"))
                .transpose()?,
            association,
        }))
    }
}

/// A webhook body read event by event: one unreadable event must not cost the others,
/// because HubSpot does not redeliver a batch it got a 4xx for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventBatch {
    /// The events about objects this service syncs (others are left out).
    pub events: Vec<HubSpotEvent>,
    /// The events that could not be read, with why.
    pub rejected: Vec<RejectedEvent>,
}

/// One event of a batch that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedEvent {
    /// Its position in the batch (0-based).
    pub index: usize,
    pub reason: String,
}

/// Parses a webhook body: a JSON array of at most 100 events. A body that is not such an
/// array is `Malformed`; an event inside it that cannot be read is listed as rejected.
pub fn parse_events(raw_body: &[u8]) -> Result<EventBatch, WebhookError> {
    let raw: Vec<&serde_json::value::RawValue> = serde_json::from_slice(raw_body)
        .map_err(|e| WebhookError::Malformed(format!("body is not a HubSpot event array: {e}")))?;
    if raw.len() > MAX_EVENTS_PER_REQUEST {
        return Err(WebhookError::Malformed(format!(
            "{} events in one request (at most {MAX_EVENTS_PER_REQUEST})",
            raw.len()
        )));
    }
    let mut batch = EventBatch::default();
    for (index, event) in raw.into_iter().enumerate() {
        let parsed = serde_json::from_str::<RawEvent>(event.get())
            .map_err(|e| WebhookError::Malformed(format!("not a HubSpot event: {e}")))
            .and_then(RawEvent::into_event);
        match parsed {
            Ok(Some(event)) => batch.events.push(event),
            Ok(None) => {}
            Err(e) => batch.rejected.push(RejectedEvent {
                index,
                reason: e.to_string(),
            }),
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URI: &str = "https://www.example.com/webhook_uri";
    const SINGLE_QUOTED: &str = "{'example_field':'example_value'}";
    const DOUBLE_QUOTED: &str = r#"{"example_field":"example_value"}"#;
    const V1_A_BODY: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

    fn secret() -> Secret {
        Secret::new(SECRET)
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn the_official_v3_vectors_verify() {
        // (body, timestamp, expected): V3-a, V3-b, V3-c, V3-d.
        let cases = [
            (
                SINGLE_QUOTED,
                "1693657560000",
                "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=",
            ),
            (
                SINGLE_QUOTED,
                "15000000",
                "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=",
            ),
            (
                DOUBLE_QUOTED,
                "1693657560000",
                "oaA3M5dEtt6kFsseJD/Hv/x+JNl1vsoxFj4oxmwP6Go=",
            ),
            (
                V1_A_BODY,
                "1700000000000",
                "/pXDSgWeGksQpwCsgqd43P0eY6gBIse9UX0tfkudUrE=",
            ),
        ];
        for (body, ts, expected) in cases {
            assert_eq!(
                sign_v3("POST", URI, body.as_bytes(), ts, &secret()),
                expected
            );
            let now = at(ts.parse::<i64>().expect("digits") + 1000);
            assert_eq!(
                verify_v3(
                    "POST",
                    URI,
                    body.as_bytes(),
                    Some(ts),
                    Some(expected),
                    &secret(),
                    now
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn the_v3_uri_decodes_only_the_listed_escapes() {
        let raw = "https://www.example.com/hooks/hubspot?tenant=acme%3Aeu&sig=a%2Cb%20c";
        assert_eq!(
            v3_signed_uri(raw),
            "https://www.example.com/hooks/hubspot?tenant=acme:eu&sig=a,b%20c"
        );
        assert_eq!(v3_signed_uri("/a%2f%3a%3D%26%2x%"), "/a/:%3D%26%2x%");
        // V3-e: the decoded form is what HubSpot signs.
        let signed = "x+GxqhP85gJY4j6KgZhNVu2nj/tvmyPrR3wIPKw2cC8=";
        assert_eq!(
            sign_v3(
                "POST",
                raw,
                V1_A_BODY.as_bytes(),
                "1700000000000",
                &secret()
            ),
            signed
        );
        assert_eq!(
            verify_v3(
                "POST",
                raw,
                V1_A_BODY.as_bytes(),
                Some("1700000000000"),
                Some(signed),
                &secret(),
                at(1_700_000_000_000)
            ),
            Ok(())
        );
        let undecoded = "/Nib2ZP8qB9VrUh+k6RPNr5qzmw2aDbJeKaHtC4XS/Q=";
        assert_eq!(
            verify_v3(
                "POST",
                raw,
                V1_A_BODY.as_bytes(),
                Some("1700000000000"),
                Some(undecoded),
                &secret(),
                at(1_700_000_000_000)
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_utf8_body_is_signed_as_its_bytes() {
        let body = r#"[{"propertyName":"name","propertyValue":"Café Zürich"}]"#;
        assert_eq!(
            sign_v3("POST", URI, body.as_bytes(), "1700000000000", &secret()),
            "mtl/vjqTGvyQAX9mRE42Oqleh42VepWiJrmd28ZGbWs="
        );
    }

    #[test]
    fn the_official_v1_and_v2_vectors_verify() {
        let v1 = [
            (
                V1_A_BODY,
                "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
            ),
            (
                SINGLE_QUOTED,
                "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750",
            ),
        ];
        for (body, expected) in v1 {
            assert_eq!(sign_v1(body.as_bytes(), &secret()), expected);
            assert_eq!(
                verify_v1(body.as_bytes(), Some(expected), &secret()),
                Ok(())
            );
        }
        let v2 = [
            (
                "GET",
                "",
                "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
            ),
            (
                "POST",
                DOUBLE_QUOTED,
                "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
            ),
            (
                "POST",
                SINGLE_QUOTED,
                "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383",
            ),
        ];
        for (method, body, expected) in v2 {
            assert_eq!(sign_v2(method, URI, body.as_bytes(), &secret()), expected);
            assert_eq!(
                verify_v2(method, URI, body.as_bytes(), Some(expected), &secret()),
                Ok(())
            );
        }
    }

    #[test]
    fn a_tampered_body_uri_or_secret_is_a_bad_signature() {
        let ts = "1693657560000";
        let sig = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";
        let now = at(1_693_657_560_000);
        let check = |method: &str, uri: &str, body: &str, secret: &Secret| {
            verify_v3(
                method,
                uri,
                body.as_bytes(),
                Some(ts),
                Some(sig),
                secret,
                now,
            )
        };
        assert_eq!(check("POST", URI, SINGLE_QUOTED, &secret()), Ok(()));
        assert_eq!(
            check("POST", URI, DOUBLE_QUOTED, &secret()),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            check(
                "POST",
                "https://www.example.com/other",
                SINGLE_QUOTED,
                &secret()
            ),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            check("PUT", URI, SINGLE_QUOTED, &secret()),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            check("POST", URI, SINGLE_QUOTED, &Secret::new("other")),
            Err(WebhookError::BadSignature)
        );
        // A signature that is not even base64, or a truncated one.
        assert_eq!(
            verify_v3(
                "POST",
                URI,
                SINGLE_QUOTED.as_bytes(),
                Some(ts),
                Some("%%%"),
                &secret(),
                now
            ),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_v3(
                "POST",
                URI,
                SINGLE_QUOTED.as_bytes(),
                Some(ts),
                Some("K36dawei4A+QBNolUOqo7s91KQDWQ5MX"),
                &secret(),
                now
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn a_stale_timestamp_is_rejected_and_so_is_a_future_one() {
        let ts = "1693657560000";
        let sig = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";
        let check = |now_ms: i64| {
            verify_v3(
                "POST",
                URI,
                SINGLE_QUOTED.as_bytes(),
                Some(ts),
                Some(sig),
                &secret(),
                at(now_ms),
            )
        };
        let t = 1_693_657_560_000;
        assert_eq!(check(t + 300_000), Ok(()));
        assert_eq!(check(t + 300_001), Err(WebhookError::StaleTimestamp));
        assert_eq!(check(t - 300_000), Ok(()));
        assert_eq!(check(t - 300_001), Err(WebhookError::StaleTimestamp));
    }

    #[test]
    fn a_changed_timestamp_breaks_the_signature() {
        let sig = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";
        assert_eq!(
            verify_v3(
                "POST",
                URI,
                SINGLE_QUOTED.as_bytes(),
                Some("1693657560001"),
                Some(sig),
                &secret(),
                at(1_693_657_560_000)
            ),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn missing_headers_are_named_and_garbage_timestamps_are_malformed() {
        let now = at(1_693_657_560_000);
        assert_eq!(
            verify_v3("POST", URI, b"", Some("1"), None, &secret(), now),
            Err(WebhookError::MissingHeader(HEADER_SIGNATURE_V3))
        );
        assert_eq!(
            verify_v3("POST", URI, b"", None, Some("x"), &secret(), now),
            Err(WebhookError::MissingHeader(HEADER_TIMESTAMP))
        );
        for bad in ["", "abc", "-1693657560000", "1.5e12", "+1693657560000"] {
            assert!(
                matches!(
                    verify_v3("POST", URI, b"", Some(bad), Some("x"), &secret(), now),
                    Err(WebhookError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn verify_request_picks_the_scheme_by_headers() {
        let now = at(1_693_657_560_000);
        let body = SINGLE_QUOTED.as_bytes();
        let v3 = SignatureHeaders {
            signature_v3: Some("K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="),
            timestamp: Some("1693657560000"),
            // A wrong legacy signature next to a valid v3 one does not matter.
            signature: Some("00"),
            signature_version: Some("v1"),
        };
        assert_eq!(
            verify_request("POST", URI, body, &v3, &secret(), now),
            Ok(SignatureVersion::V3)
        );
        let v1 = SignatureHeaders {
            signature: Some("69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"),
            signature_version: Some("v1"),
            ..Default::default()
        };
        assert_eq!(
            verify_request("POST", URI, body, &v1, &secret(), now),
            Ok(SignatureVersion::V1)
        );
        let v2 = SignatureHeaders {
            signature: Some("4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"),
            signature_version: Some("v2"),
            ..Default::default()
        };
        assert_eq!(
            verify_request("POST", URI, body, &v2, &secret(), now),
            Ok(SignatureVersion::V2)
        );
        let v2_as_v1 = SignatureHeaders {
            signature_version: Some("v1"),
            ..v2
        };
        assert_eq!(
            verify_request("POST", URI, body, &v2_as_v1, &secret(), now),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_request(
                "POST",
                URI,
                body,
                &SignatureHeaders::default(),
                &secret(),
                now
            ),
            Err(WebhookError::MissingHeader(HEADER_SIGNATURE_V3))
        );
        let unknown = SignatureHeaders {
            signature_version: Some("v9"),
            ..v1
        };
        assert!(matches!(
            verify_request("POST", URI, body, &unknown, &secret(), now),
            Err(WebhookError::Malformed(_))
        ));
    }

    const BATCH: &str = r#"[
      {"eventId":3816279340,"subscriptionId":25,"portalId":33,"appId":1160452,"occurredAt":1462216307945,
       "subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":1246965,
       "propertyName":"lifecyclestage","propertyValue":"customer","changeSource":"CRM_UI","sourceId":"userId:45678"},
      {"eventId":3816279480,"subscriptionId":22,"portalId":33,"appId":1160452,"occurredAt":1462216307945,
       "subscriptionType":"company.creation","attemptNumber":0,"objectId":1246978,"changeSource":"IMPORT","changeFlag":"NEW"},
      {"eventId":3816279999,"subscriptionId":60,"portalId":33,"appId":1160452,"occurredAt":1462216309000,
       "subscriptionType":"company.merge","attemptNumber":0,"objectId":100,"primaryObjectId":100,
       "mergedObjectIds":[200],"newObjectId":100,"numberOfPropertiesMoved":14,"changeSource":"CRM_UI"},
      {"eventId":3816280001,"subscriptionId":61,"portalId":33,"appId":1160452,"occurredAt":1462216310000,
       "subscriptionType":"company.associationChange","attemptNumber":0,"objectId":100,
       "associationType":"COMPANY_TO_CONTACT","fromObjectId":100,"toObjectId":555,
       "associationRemoved":false,"isPrimaryAssociation":false,"changeSource":"CRM_UI"},
      {"eventId":5,"subscriptionId":1,"portalId":33,"appId":1,"occurredAt":1462216310000,
       "subscriptionType":"deal.creation","attemptNumber":0,"objectId":9},
      {"eventId":6,"subscriptionId":1,"portalId":"33","appId":1,"occurredAt":1462216311000,
       "eventType":"contact.deletion","attemptNumber":3,"objectId":"77"},
      {"eventId":7,"subscriptionId":1,"portalId":33,"appId":1,"occurredAt":1462216312000,
       "subscriptionType":"object.restore","objectTypeId":"0-2","attemptNumber":0,"objectId":78}
    ]"#;

    #[test]
    fn the_documented_event_batch_parses() {
        let events = parse_events(BATCH.as_bytes()).expect("parses").events;
        // The deal event is not ours and is left out.
        assert_eq!(events.len(), 6);

        let change = &events[0];
        assert_eq!(change.object, ObjectKind::Company);
        assert_eq!(change.object_id.as_str(), "1246965");
        assert_eq!(change.change, ChangeKind::Updated);
        assert_eq!(change.portal_id.as_str(), "33");
        assert_eq!(change.occurred_at, at(1_462_216_307_945));
        assert_eq!(change.property_name.as_deref(), Some("lifecyclestage"));
        assert_eq!(change.change_source.as_deref(), Some("CRM_UI"));
        assert_eq!(change.hubspot_event_id, 3_816_279_340);

        assert_eq!(events[1].change, ChangeKind::Created);

        let merge = &events[2];
        assert_eq!(merge.change, ChangeKind::Merged);
        assert_eq!(
            merge.merged_object_ids,
            vec![SourceId::parse("200").expect("id")]
        );
        assert_eq!(
            merge.primary_object_id.as_ref().map(SourceId::as_str),
            Some("100")
        );
        assert_eq!(
            merge.new_object_id.as_ref().map(SourceId::as_str),
            Some("100")
        );

        let assoc = events[3].association.as_ref().expect("association");
        assert_eq!(events[3].change, ChangeKind::AssociationChanged);
        assert_eq!(assoc.association_type, "COMPANY_TO_CONTACT");
        assert_eq!(assoc.to_object_id.as_str(), "555");
        assert!(!assoc.removed);

        let deletion = &events[4];
        assert_eq!(
            (deletion.object, deletion.change),
            (ObjectKind::Contact, ChangeKind::Deleted)
        );
        assert_eq!(deletion.attempt_number, 3);

        assert_eq!(
            (events[5].object, events[5].change),
            (ObjectKind::Company, ChangeKind::Restored)
        );
    }

    #[test]
    fn a_redelivered_event_keeps_its_key_and_a_different_change_does_not() {
        let one = r#"[{"eventId":1,"portalId":33,"occurredAt":10,"subscriptionType":"company.propertyChange","attemptNumber":0,"objectId":5,"propertyName":"name","propertyValue":"A"}]"#;
        let again = one.replace("\"attemptNumber\":0", "\"attemptNumber\":4");
        let other_value = one.replace("\"A\"", "\"B\"");
        let key = |body: &str| {
            parse_events(body.as_bytes()).expect("parses").events[0]
                .event_id
                .clone()
        };
        assert_eq!(key(one), key(&again));
        assert_ne!(key(one), key(&other_value));
    }

    #[test]
    fn bodies_that_are_not_an_event_array_of_at_most_100_are_malformed() {
        let one = r#"{"eventId":1,"portalId":33,"occurredAt":10,"subscriptionType":"company.creation","objectId":5}"#;
        let hundred = format!("[{}]", vec![one; 100].join(","));
        assert_eq!(
            parse_events(hundred.as_bytes())
                .expect("100 is fine")
                .events
                .len(),
            100
        );
        let too_many = format!("[{}]", vec![one; 101].join(","));
        for bad in [too_many.as_str(), one, "", "not json", "[1,"] {
            assert!(
                matches!(
                    parse_events(bad.as_bytes()),
                    Err(WebhookError::Malformed(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(parse_events(b"[]"), Ok(EventBatch::default()));
    }

    #[test]
    fn an_unreadable_event_is_rejected_alone_and_the_rest_are_kept() {
        let good = r#"{"eventId":1,"portalId":33,"occurredAt":10,"subscriptionType":"company.creation","objectId":5}"#;
        let bad = [
            r#"{"eventId":1}"#,
            r#"{"eventId":1,"portalId":33,"occurredAt":10,"objectId":5}"#,
            r#"{"eventId":1,"portalId":33,"occurredAt":10,"subscriptionType":"nodot","objectId":5}"#,
            r#"{"eventId":"x","portalId":33,"occurredAt":10,"subscriptionType":"company.creation","objectId":5}"#,
            "42",
        ];
        for one_bad in bad {
            let body = format!("[{good},{one_bad},{good}]");
            let batch = parse_events(body.as_bytes()).expect("the array itself is fine");
            assert_eq!(batch.events.len(), 2, "{one_bad}");
            assert_eq!(batch.rejected.len(), 1, "{one_bad}");
            assert_eq!(batch.rejected[0].index, 1);
            assert!(!batch.rejected[0].reason.is_empty());
        }
    }
}

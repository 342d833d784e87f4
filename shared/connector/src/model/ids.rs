use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

const MAX_ID_LEN: usize = 128;

/// Ids travel inside storage keys (`T#<tenant>#C#<id>`), queue bodies and URLs, so
/// they are restricted to a character set that needs no escaping and never contains
/// the key separator `#`.
fn check_id(what: &'static str, raw: &str) -> Result<(), ParseError> {
    if raw.is_empty() {
        return Err(ParseError::new(what, "is empty"));
    }
    if raw.len() > MAX_ID_LEN {
        return Err(ParseError::new(
            what,
            format!("is longer than {MAX_ID_LEN} characters"),
        ));
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(ParseError::new(
            what,
            format!(
                "contains the character {bad:?}; allowed are letters, digits, '-', '_', '.', ':'"
            ),
        ));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: impl Into<String>) -> Result<Self, ParseError> {
                let raw = raw.into();
                check_id($what, &raw)?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(raw: String) -> Result<Self, ParseError> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(raw: &str) -> Result<Self, ParseError> {
                Self::parse(raw)
            }
        }
    };
}

/// Ids the service mints itself: a UUIDv7, so they sort by creation time.
macro_rules! generated_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        string_id!($(#[$doc])* $name, $what);

        impl $name {
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// When the id was minted, read from its UUIDv7 time; `None` for an id this
            /// service did not generate.
            pub fn created_at(&self) -> Option<$crate::model::Timestamp> {
                let (secs, nanos) = uuid::Uuid::parse_str(&self.0).ok()?.get_timestamp()?.to_unix();
                let millis = i64::try_from(secs).ok()?.checked_mul(1000)? + i64::from(nanos / 1_000_000);
                Some($crate::model::Timestamp::from_millis(millis))
            }
        }
    };
}

string_id!(
    /// A workspace of the B2B product; every stored item belongs to exactly one.
    TenantId,
    "tenant id"
);
generated_id!(
    /// One tenant's link to one provider account.
    ConnectionId,
    "connection id"
);
generated_id!(CustomerId, "customer id");
generated_id!(ContactId, "contact id");
generated_id!(LogEntryId, "log entry id");
generated_id!(PendingMatchId, "pending match id");
generated_id!(SyncRunId, "sync run id");
generated_id!(JobId, "job id");
string_id!(
    /// One row of the conflict audit, derived from what it records so resolving the same
    /// conflict again writes the same row.
    ConflictId,
    "conflict id"
);
string_id!(
    /// A record's id at the provider: a HubSpot object id (`"512"`) or a Stripe id (`"cus_123"`).
    SourceId,
    "source record id"
);
string_id!(
    /// The provider account a connection is bound to: HubSpot portal id, Stripe account id.
    ProviderAccountId,
    "provider account id"
);
string_id!(
    /// The provider's id of one webhook event, the key for dropping duplicates.
    WebhookEventId,
    "webhook event id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    #[test]
    fn ids_reject_empty_and_separator_characters() {
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("acme#1").is_err());
        assert!(TenantId::parse("a b").is_err());
        assert!(TenantId::parse("x".repeat(129)).is_err());
        assert!(TenantId::parse("acme-eu_1.a:b").is_ok());
    }

    #[test]
    fn ids_deserialize_through_parse() {
        let bad: Result<SourceId, _> = serde_json::from_str("\"has space\"");
        assert!(bad.is_err());
        let good: SourceId = serde_json::from_str("\"cus_123\"").expect("valid id");
        assert_eq!(good.as_str(), "cus_123");
    }

    #[test]
    fn generated_ids_sort_by_creation() {
        let a = LogEntryId::generate();
        let b = LogEntryId::generate();
        assert!(a < b);
    }

    #[test]
    fn generated_ids_know_when_they_were_minted() {
        let before = Timestamp::now();
        let id = SyncRunId::generate();
        let minted = id.created_at().expect("a UUIDv7");
        assert!(minted.as_millis() >= before.as_millis() - 1);
        assert!(minted.as_millis() <= Timestamp::now().as_millis());
        assert_eq!(SyncRunId::parse("run-1").expect("an id").created_at(), None);
    }
}

use std::fmt;

use serde::{Deserialize, Serialize};

/// The sync log's error codes (ARCHITECTURE.md, "Error taxonomy"). Every failure the
/// service records maps to exactly one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Token revoked or refresh refused: connection -> Reauthorize, stop its jobs.
    OauthRevoked,
    /// The record was deleted at the provider: archive the customer.
    SourceDeleted,
    /// A mapped property no longer exists or changed type: skip that field.
    FieldMappingInvalid,
    /// Two or more candidates: a pending match for the admin.
    MatchAmbiguous,
    /// The provider throttled us: retry honouring `Retry-After`.
    RateLimited,
    /// The OAuth user lost a scope or access: flag the connection.
    PermissionDenied,
    /// 5xx or timeout at the provider: retry with backoff.
    ProviderUnavailable,
    /// Our own store or queue failed: leave the job for redelivery; never blame the provider.
    StoreUnavailable,
    /// The company filter names a list, lifecycle stage or pipeline the account does not
    /// have (any more): nothing is archived or skipped by it until the admin fixes it.
    FilterInvalid,
    /// Our bug: retry once, then log with a correlation id.
    Internal,
    /// A write was due for a connection that is not Connected (disconnected, or never
    /// finished connecting).
    NotConnected,
    /// Dedupe by email is off and a contact with the email exists at the provider.
    ContactExists,
    /// The provider refused a mapped property's value (not one of an enumeration's options,
    /// not a number, not a date, ...).
    InvalidPropertyValue,
    /// A record to push has no email, and "sync without email" is off.
    MissingEmail,
    /// Every mapped value of a record to push is empty: there is nothing to write.
    NothingToSync,
}

/// An error code with its words, as the log, the API and the console show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorExplained {
    pub code: ErrorCode,
    pub title: &'static str,
    pub meaning: &'static str,
    pub fix: &'static str,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::OauthRevoked,
        ErrorCode::SourceDeleted,
        ErrorCode::FieldMappingInvalid,
        ErrorCode::MatchAmbiguous,
        ErrorCode::RateLimited,
        ErrorCode::PermissionDenied,
        ErrorCode::ProviderUnavailable,
        ErrorCode::StoreUnavailable,
        ErrorCode::FilterInvalid,
        ErrorCode::Internal,
        ErrorCode::NotConnected,
        ErrorCode::ContactExists,
        ErrorCode::InvalidPropertyValue,
        ErrorCode::MissingEmail,
        ErrorCode::NothingToSync,
    ];

    /// The other side is busy or down: the same call, later, may well succeed. (Narrower
    /// than [`ErrorCode::is_transient`]: an internal error may lie in the data itself.)
    pub fn is_busy_or_down(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited | ErrorCode::ProviderUnavailable | ErrorCode::StoreUnavailable
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::OauthRevoked => "oauth_revoked",
            ErrorCode::SourceDeleted => "source_deleted",
            ErrorCode::FieldMappingInvalid => "field_mapping_invalid",
            ErrorCode::MatchAmbiguous => "match_ambiguous",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::FilterInvalid => "filter_invalid",
            ErrorCode::Internal => "internal",
            ErrorCode::NotConnected => "not_connected",
            ErrorCode::ContactExists => "contact_exists",
            ErrorCode::InvalidPropertyValue => "invalid_property_value",
            ErrorCode::MissingEmail => "missing_email",
            ErrorCode::NothingToSync => "nothing_to_sync",
        }
    }

    /// The row's heading in the log and the console.
    pub fn explained(self) -> ErrorExplained {
        ErrorExplained {
            code: self,
            title: self.title(),
            meaning: self.meaning(),
            fix: self.admin_action(),
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::OauthRevoked => "Access to the account was revoked",
            ErrorCode::SourceDeleted => "The record was deleted at the provider",
            ErrorCode::FieldMappingInvalid => "A mapped property does not exist",
            ErrorCode::MatchAmbiguous => "More than one record matches",
            ErrorCode::RateLimited => "The provider is throttling us",
            ErrorCode::PermissionDenied => "A permission is missing",
            ErrorCode::ProviderUnavailable => "The provider is unavailable",
            ErrorCode::StoreUnavailable => "Our database or queue is unavailable",
            ErrorCode::FilterInvalid => "The company filter names nothing",
            ErrorCode::Internal => "Something went wrong on our side",
            ErrorCode::NotConnected => "The connection is not connected",
            ErrorCode::ContactExists => "The contact already exists",
            ErrorCode::InvalidPropertyValue => "The provider refused a value",
            ErrorCode::MissingEmail => "The record has no email",
            ErrorCode::NothingToSync => "Nothing to sync",
        }
    }

    /// What the row means, in a sentence.
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorCode::OauthRevoked => {
                "The provider refused our token: it was revoked, or the refresh was refused."
            }
            ErrorCode::SourceDeleted => {
                "The record no longer exists at the provider, so its copy here was archived."
            }
            ErrorCode::FieldMappingInvalid => {
                "A property the field mapping names was deleted at the provider or changed type; the other fields still sync."
            }
            ErrorCode::MatchAmbiguous => {
                "Two or more records could be this one; the service does not guess."
            }
            ErrorCode::RateLimited => "The provider asked us to slow down (HTTP 429).",
            ErrorCode::PermissionDenied => {
                "The connecting user or app lacks a scope or permission this call needs."
            }
            ErrorCode::ProviderUnavailable => "The provider answered 5xx or timed out.",
            ErrorCode::StoreUnavailable => "Our own store or queue failed; the job is kept.",
            ErrorCode::FilterInvalid => {
                "The list, lifecycle stage or pipeline of the company filter does not exist (any more)."
            }
            ErrorCode::Internal => "An unexpected answer or a bug of ours.",
            ErrorCode::NotConnected => {
                "A write was due but the connection is disconnected or never finished connecting."
            }
            ErrorCode::ContactExists => {
                "Dedupe by email is off and the provider already has a contact with this email."
            }
            ErrorCode::InvalidPropertyValue => {
                "The provider refused the value of a mapped property: it is not one of the allowed options, or not of the property's type."
            }
            ErrorCode::MissingEmail => {
                "The record has no email, and sync without email is off, so it was skipped."
            }
            ErrorCode::NothingToSync => "Every mapped value of the record is empty.",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// What the admin should do about a row with this code (ARCHITECTURE.md's last column).
    pub fn admin_action(self) -> &'static str {
        match self {
            ErrorCode::OauthRevoked => {
                "Reauthorize the connection. Its data, field mapping and filter are kept."
            }
            ErrorCode::SourceDeleted => {
                "Check that the deletion was intended; if it was not, restore the record at the provider and the customer comes back."
            }
            ErrorCode::FieldMappingInvalid => {
                "Open Field mapping and remap or drop the field; the other fields kept syncing."
            }
            ErrorCode::MatchAmbiguous => "Pick the winning record on Matches.",
            ErrorCode::RateLimited => "Nothing: the service retries by itself.",
            ErrorCode::PermissionDenied => {
                "Give the connecting user back the permission, or reauthorize as a user who has it."
            }
            ErrorCode::ProviderUnavailable => {
                "Nothing unless it persists: the service retries with backoff."
            }
            ErrorCode::StoreUnavailable => {
                "Nothing: the job is redelivered. Contact support if it persists."
            }
            ErrorCode::FilterInvalid => {
                "Open the company filter and pick a list, stage or pipeline that exists."
            }
            ErrorCode::Internal => {
                "Retry once; if it fails again, report it with this row's correlation id."
            }
            ErrorCode::NotConnected => "Connect or reauthorize the connection, then Retry the row.",
            ErrorCode::ContactExists => {
                "Turn dedupe by email on to update the existing contact, or change the record's email, then Retry."
            }
            ErrorCode::InvalidPropertyValue => {
                "Fix the value in the record or map the field to a property that takes it, then Retry."
            }
            ErrorCode::MissingEmail => {
                "Add an email to the record, or turn on sync without email, then Retry."
            }
            ErrorCode::NothingToSync => {
                "Fill in at least one mapped field of the record, or map more fields, then Retry."
            }
        }
    }

    /// Whether a job that failed with this code is worth retrying automatically.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorCode::RateLimited
                | ErrorCode::ProviderUnavailable
                | ErrorCode::StoreUnavailable
                | ErrorCode::Internal
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_log_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }
}

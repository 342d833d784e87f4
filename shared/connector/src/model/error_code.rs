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
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 10] = [
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

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

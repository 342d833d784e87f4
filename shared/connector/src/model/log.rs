use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ConnectionId, ContactId, ErrorCode, Job, LogEntryId, ObjectKind, Provider, SourceId, TenantId,
    Timestamp,
};

/// How long sync log rows are kept.
pub const LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The largest provider response body kept in a log row; longer bodies are cut.
pub const MAX_LOGGED_RESPONSE_BYTES: usize = 4096;

/// How one sync attempt of one record ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStatus {
    Applied,
    Unchanged,
    Archived,
    Restored,
    /// Held for the admin: an ambiguous match, or an archive held by the mass-archive guard.
    Held,
    Failed,
    /// A record of ours was written into the provider.
    Pushed,
    /// A push failed and is tried again at `next_attempt_at`.
    Retrying,
}

/// One step of a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStepKind {
    Contact,
    Company,
    List,
}

/// How one step of a push ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Created,
    Updated,
    /// The list step: the contact was added.
    Added,
    AlreadyMember,
    /// Not done, by design (a dynamic list, a contact without a domain).
    Skipped,
    Failed,
}

/// One step of a push, as its log row shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushStep {
    pub step: PushStepKind,
    pub result: StepResult,
    /// The provider's id of what the step wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<SourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    /// What happened, in words for the admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One row of the sync log, kept 30 days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub id: LogEntryId,
    pub at: Timestamp,
    pub provider: Provider,
    pub object_kind: Option<ObjectKind>,
    pub record_id: Option<SourceId>,
    pub status: LogStatus,
    pub duration_ms: u64,
    pub error_code: Option<ErrorCode>,
    /// What happened, in words for the admin. Never a token or a whole payload.
    pub message: Option<String>,
    /// The provider's response body, cut to [`MAX_LOGGED_RESPONSE_BYTES`].
    pub provider_response: Option<String>,
    pub retry_count: u32,
    /// The job to send again when the admin presses Retry; `None` when there is nothing to retry.
    pub retry_job: Option<Job>,
    /// Ties the row to the service's own logs (`internal` errors).
    pub correlation_id: Option<String>,
    /// Our contact, for a push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// A push's steps, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<PushStep>,
    /// When a pending retry is due (status `retrying`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// After this the row is gone: DynamoDB's TTL deletes it (late), and every read filters on it.
    pub expires_at: Timestamp,
}

impl LogEntry {
    pub fn new(
        tenant_id: TenantId,
        connection_id: ConnectionId,
        provider: Provider,
        status: LogStatus,
        at: Timestamp,
    ) -> Self {
        Self {
            tenant_id,
            connection_id,
            id: LogEntryId::generate(),
            at,
            provider,
            object_kind: None,
            record_id: None,
            status,
            duration_ms: 0,
            error_code: None,
            message: None,
            provider_response: None,
            retry_count: 0,
            retry_job: None,
            correlation_id: None,
            contact_id: None,
            steps: Vec::new(),
            next_attempt_at: None,
            expires_at: at.plus(LOG_RETENTION),
        }
    }

    pub fn is_error(&self) -> bool {
        self.status == LogStatus::Failed || self.error_code.is_some()
    }

    /// Keeps at most [`MAX_LOGGED_RESPONSE_BYTES`] of a response body, cut on a character boundary.
    pub fn truncate_response(body: &str) -> String {
        if body.len() <= MAX_LOGGED_RESPONSE_BYTES {
            return body.to_owned();
        }
        let mut end = MAX_LOGGED_RESPONSE_BYTES;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &body[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_LOGGED_RESPONSE_BYTES);
        let cut = LogEntry::truncate_response(&long);
        assert!(cut.len() <= MAX_LOGGED_RESPONSE_BYTES + '…'.len_utf8());
        assert_eq!(LogEntry::truncate_response("short"), "short");
    }
}

use serde::{Deserialize, Serialize};

use super::{
    ConnectionId, ContactId, JobId, LogEntryId, ObjectKind, ParseError, Provider, SourceId,
    SyncRunId, TenantId, Timestamp, WebhookEventId,
};

/// What the provider said happened, as far as a webhook tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
    Restored,
    Merged,
    AssociationChanged,
}

/// Why a record job exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobCause {
    Webhook {
        event_id: WebhookEventId,
        occurred_at: Timestamp,
        change: ChangeKind,
    },
    Reconcile {
        run_id: SyncRunId,
    },
    /// An admin pressed Retry on a log row.
    Retry {
        log_entry_id: LogEntryId,
    },
    /// An admin asked to resync one customer.
    Resync,
    /// The product wrote the record through the records API.
    Write,
    /// Two-way: a read of the provider's record found our values newer.
    Resolution,
    /// An admin restored a conflict's losing value.
    Restore,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobKind {
    /// Fetch one record fresh from the provider, map, match, apply.
    SyncRecord {
        object: ObjectKind,
        source_id: SourceId,
        cause: JobCause,
    },
    /// Continue a full reconciliation from its checkpoint.
    Reconcile { run_id: SyncRunId },
    /// Push one of our contacts into the provider: contact, company and list steps.
    PushContact {
        contact_id: ContactId,
        cause: JobCause,
    },
}

/// A unit of work on a queue. The body of a queue message is this, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub provider: Provider,
    pub kind: JobKind,
    /// How many times this job has been tried and failed (0 on the first try). The retry
    /// schedule is data carried in the job, not the queue's receive count.
    pub attempt: u32,
    pub enqueued_at: Timestamp,
}

impl Job {
    pub fn new(
        tenant_id: TenantId,
        connection_id: ConnectionId,
        provider: Provider,
        kind: JobKind,
        now: Timestamp,
    ) -> Self {
        Self {
            id: JobId::generate(),
            tenant_id,
            connection_id,
            provider,
            kind,
            attempt: 0,
            enqueued_at: now,
        }
    }

    pub fn to_body(&self) -> String {
        // A Job is plain data (strings, numbers, enums): serializing it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_body(body: &str) -> Result<Self, ParseError> {
        serde_json::from_str(body).map_err(|e| ParseError::new("job", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_their_queue_body() {
        let job = Job::new(
            TenantId::parse("acme").expect("valid"),
            ConnectionId::generate(),
            Provider::Hubspot,
            JobKind::SyncRecord {
                object: ObjectKind::Company,
                source_id: SourceId::parse("512").expect("valid"),
                cause: JobCause::Webhook {
                    event_id: WebhookEventId::parse("100").expect("valid"),
                    occurred_at: Timestamp::from_millis(1_700_000_000_000),
                    change: ChangeKind::Updated,
                },
            },
            Timestamp::from_millis(1_700_000_000_100),
        );
        assert_eq!(Job::from_body(&job.to_body()), Ok(job));
        assert!(Job::from_body("{\"id\":1}").is_err());
    }
}

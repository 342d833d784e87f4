//! Two-way sync's memory of each field (the value both sides last agreed on) and its
//! conflict audit (the value that lost, kept 30 days).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ConflictId, ConnectionId, ContactId, Provider, SourceId, TargetField, TenantId, Timestamp,
};

/// How long a conflict stays in the audit.
pub const CONFLICT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Which side of a two-way connection wrote a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The product, through the records API (or a Restore).
    Ours,
    /// The provider (HubSpot), by a user, a workflow or another app.
    Theirs,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Theirs => "theirs",
        }
    }
}

/// A two-way field when both sides last held the same value: the value, when it was
/// written and by which side. A value we pushed is how our own webhook echo is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InStep {
    pub value: Option<String>,
    pub at: Timestamp,
    pub by: Side,
}

/// One side's value in a conflict, and when it was written there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideValue {
    pub value: Option<String>,
    pub written_at: Timestamp,
}

/// A field changed on both sides since it was last in step: the later write won, the
/// other is kept here so an admin can Restore it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub id: ConflictId,
    pub provider: Provider,
    /// When the conflict was resolved.
    pub at: Timestamp,
    pub contact_id: ContactId,
    /// The provider's record (HubSpot contact id).
    pub record_id: SourceId,
    pub field: TargetField,
    /// The provider property the field is mapped to.
    pub property: String,
    pub ours: SideValue,
    pub theirs: SideValue,
    pub winner: Side,
    /// When an admin wrote the losing value back, if they did.
    pub restored_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    /// Optimistic-concurrency version, bumped by the store on every write.
    pub version: u64,
}

impl Conflict {
    pub fn loser(&self) -> (Side, &SideValue) {
        match self.winner {
            Side::Ours => (Side::Theirs, &self.theirs),
            Side::Theirs => (Side::Ours, &self.ours),
        }
    }
}

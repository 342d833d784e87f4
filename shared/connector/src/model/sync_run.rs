use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::{
    ArchiveReason, ConnectionId, ErrorCode, ObjectKind, SourceId, SyncRunId, TenantId, Timestamp,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// Right after the OAuth connect.
    Initial,
    /// The nightly reconciliation (02:00 UTC).
    Scheduled,
    /// "Run sync now".
    Manual,
    /// The pass a company filter change starts: what it brings in or archives moved
    /// because of the filter, so none of it is a webhook miss.
    FilterChange,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncRunStatus {
    Running,
    Completed,
    Failed,
}

/// The run's ledger: `seen = applied + pushed + unchanged + archived + failed + held`
/// once it completes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounters {
    pub seen: u64,
    pub applied: u64,
    /// Two-way records where our side held newer values: a push of them was queued.
    #[serde(default)]
    pub pushed: u64,
    pub unchanged: u64,
    pub archived: u64,
    pub failed: u64,
    /// Records waiting for the admin on a pending match (logged once, when it opened).
    #[serde(default)]
    pub held: u64,
    /// Changes the reconciliation found that no webhook had delivered.
    pub webhook_misses: u64,
}

impl SyncCounters {
    pub fn add(&mut self, other: &SyncCounters) {
        self.seen += other.seen;
        self.applied += other.applied;
        self.pushed += other.pushed;
        self.unchanged += other.unchanged;
        self.archived += other.archived;
        self.failed += other.failed;
        self.held += other.held;
        self.webhook_misses += other.webhook_misses;
    }

    /// The records the run has an outcome for.
    pub fn accounted(&self) -> u64 {
        self.applied + self.pushed + self.unchanged + self.archived + self.failed + self.held
    }

    pub fn is_balanced(&self) -> bool {
        self.seen == self.accounted()
    }
}

/// One full pass over a connection. It may span many invocations: `cursor` and
/// `checkpoint` say where the next one continues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRun {
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub id: SyncRunId,
    pub trigger: SyncTrigger,
    pub status: SyncRunStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The paging cursor of the current phase (the provider's `after`, or the store's).
    pub cursor: Option<String>,
    /// Where the pass stands between invocations.
    #[serde(default, deserialize_with = "null_as_default")]
    pub checkpoint: Checkpoint,
    pub invocations: u32,
    pub counters: SyncCounters,
    /// Why a failed run stopped, when the provider refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    pub version: u64,
}

impl SyncRun {
    pub fn start(
        tenant_id: TenantId,
        connection_id: ConnectionId,
        trigger: SyncTrigger,
        now: Timestamp,
    ) -> Self {
        Self {
            tenant_id,
            connection_id,
            id: SyncRunId::generate(),
            trigger,
            status: SyncRunStatus::Running,
            started_at: now,
            finished_at: None,
            cursor: None,
            checkpoint: Checkpoint::default(),
            invocations: 0,
            counters: SyncCounters::default(),
            error_code: None,
            version: 0,
        }
    }
}

/// Runs stored before the checkpoint was typed have `"checkpoint": null`.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Where a pass stands: listing one kind, re-checking one kind's mirrored records, the
/// guarded company archives, or done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    List(ObjectKind),
    Check(ObjectKind),
    ArchiveCompanies,
    Done,
}

impl Default for Phase {
    fn default() -> Self {
        Phase::List(ObjectKind::Company)
    }
}

/// What a pass carries from one invocation to the next, besides `SyncRun::cursor`. The
/// companies waiting for the guard's verdict are kept beside the run
/// ([`PendingArchive`]), not in it: a run item stays small however many vanish.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub phase: Phase,
    /// Companies found gone or outside the filter, waiting for the guard's verdict.
    #[serde(default)]
    pub vanished_companies: u64,
    #[serde(default)]
    pub active_companies: u64,
    /// The admin approved this run's archives: no guard.
    #[serde(default)]
    pub approved: bool,
    /// Archives the guard held for the admin.
    #[serde(default)]
    pub held: u64,
    /// When the pass last got a page done (a page that failed does not count): a pass
    /// that has not moved for long is reported stuck.
    #[serde(default)]
    pub heartbeat: Option<Timestamp>,
    /// Per kind, how much of what the listing saw is saved beside the run ([`ListedIds`]).
    #[serde(default)]
    pub listed: BTreeMap<ObjectKind, ListedProgress>,
}

/// How far the record of what a run's listing of one kind saw has been saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedProgress {
    /// Chunks saved beside the run.
    pub chunks: u32,
    /// The invocation that wrote this checkpoint held ids it had not saved yet; if it
    /// ended without handing over, they are lost.
    pub unsaved: bool,
    /// Some ids were lost: the check phase re-reads every mirrored record of the kind.
    pub lost: bool,
}

/// The most ids one [`ListedIds`] chunk holds: 128 KiB, about 175 KB stored, under
/// DynamoDB's 400 KB item limit.
pub const LISTED_CHUNK_IDS: usize = 16_384;

/// One chunk of the ids a run's listing saw, each as a 64-bit hash salted with the run
/// (see `engine::listed`). Stored as base64 of little-endian words: 8 bytes an id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListedIds(pub Vec<u64>);

impl Serialize for ListedIds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|id| id.to_le_bytes()).collect();
        serializer.serialize_str(&BASE64.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for ListedIds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(deserializer)?;
        let bytes = BASE64.decode(text).map_err(D::Error::custom)?;
        if bytes.len() % 8 != 0 {
            return Err(D::Error::custom("listed ids are not whole 8-byte words"));
        }
        Ok(ListedIds(
            bytes
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
                .collect(),
        ))
    }
}

/// A company a pass found gone or outside the filter, to be archived once every page is
/// checked and the mass-archive guard allows it. Stored per run; expires with the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingArchive {
    pub source_id: SourceId,
    pub reason: ArchiveReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_with(checkpoint: serde_json::Value) -> serde_json::Value {
        let run = SyncRun::start(
            TenantId::parse("t").expect("tenant"),
            ConnectionId::generate(),
            SyncTrigger::Manual,
            Timestamp::from_millis(0),
        );
        let mut stored = serde_json::to_value(&run).expect("a run serialises");
        stored["checkpoint"] = checkpoint;
        stored
    }

    #[test]
    fn a_checkpoint_round_trips_and_one_that_does_not_decode_is_an_error() {
        let archiving = Checkpoint {
            phase: Phase::ArchiveCompanies,
            vanished_companies: 12_000,
            ..Checkpoint::default()
        };
        let stored = stored_with(serde_json::to_value(&archiving).expect("serialises"));
        let read: SyncRun = serde_json::from_value(stored).expect("decodes");
        assert_eq!(read.checkpoint, archiving);

        let before_typing: SyncRun =
            serde_json::from_value(stored_with(serde_json::Value::Null)).expect("decodes");
        assert_eq!(before_typing.checkpoint, Checkpoint::default());

        let garbled = stored_with(serde_json::json!({"phase": {"nonsense": 1}}));
        assert!(serde_json::from_value::<SyncRun>(garbled).is_err());
    }
}

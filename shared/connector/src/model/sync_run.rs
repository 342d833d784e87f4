use serde::{Deserialize, Serialize};

use super::{ConnectionId, SyncRunId, TenantId, Timestamp};

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

/// The run's ledger: `seen = applied + unchanged + archived + failed + held` once it
/// completes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounters {
    pub seen: u64,
    pub applied: u64,
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
        self.unchanged += other.unchanged;
        self.archived += other.archived;
        self.failed += other.failed;
        self.held += other.held;
        self.webhook_misses += other.webhook_misses;
    }

    pub fn is_balanced(&self) -> bool {
        self.seen == self.applied + self.unchanged + self.archived + self.failed + self.held
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
    /// The provider's paging cursor to continue from (`after`, `starting_after`).
    pub cursor: Option<String>,
    /// Engine-defined state carried between invocations (phase, seen-set location, ...).
    pub checkpoint: Option<serde_json::Value>,
    pub invocations: u32,
    pub counters: SyncCounters,
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
            checkpoint: None,
            invocations: 0,
            counters: SyncCounters::default(),
            version: 0,
        }
    }
}

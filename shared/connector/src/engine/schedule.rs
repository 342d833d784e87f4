//! The sweep the reconciler runs every 15 minutes: it purges what expired, reviews every
//! connection's notifications, and starts each connection's nightly pass once its time
//! of day (`Connection::nightly_at`, 02:00 UTC unless the admin set another) has come.
//! One schedule rule serves every connection, whatever time each one picked.

use serde::Serialize;

use super::admin::{AdminError, AdminResult, ConnectionView};
use super::reconcile::StartError;
use super::{Engine, EngineError};
use crate::model::{Connection, ConnectionId, NightlyTime, SyncTrigger, TenantId, Timestamp};
use crate::ports::PageRequest;

/// Whether the connection's nightly pass is due at `now`: today's time has come, and
/// since then no scheduled pass started and no full pass completed (an initial sync or
/// a Run sync now after the time counts as the day's pass), nor was the connection made
/// or its time set.
pub fn nightly_due(connection: &Connection, now: Timestamp) -> bool {
    let due = connection.nightly_at.on_day_of(now);
    let latest = [
        connection.last_scheduled_at,
        connection.last_full_sync,
        Some(connection.created_at),
    ]
    .into_iter()
    .flatten()
    .max();
    now >= due && latest.is_none_or(|at| at < due)
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub reviewed: u64,
    pub started: u64,
}

impl Engine {
    /// One sweep at `now` (the schedule's firing time).
    pub async fn sweep(&self, now: Timestamp) -> Result<SweepReport, EngineError> {
        let purged = self.store.purge_expired(now).await?;
        if purged > 0 {
            tracing::info!(purged, "expired rows purged");
        }
        let mut report = SweepReport::default();
        let mut page = PageRequest::first(100);
        loop {
            let connections = self.store.list_all_connections(page.clone()).await?;
            for connection in &connections.items {
                self.review_notifications_or_log(connection).await;
                report.reviewed += 1;
                if self.start_if_due(connection, now).await? {
                    report.started += 1;
                }
            }
            match connections.next {
                Some(next) => page.cursor = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// Starts the connection's nightly pass if it is due. Concurrent sweeps start it
    /// once: each claims the day's slot under the connection's version check first.
    async fn start_if_due(
        &self,
        connection: &Connection,
        now: Timestamp,
    ) -> Result<bool, EngineError> {
        if !connection.accepts_jobs() || !connection.pulls() || !nightly_due(connection, now) {
            return Ok(false);
        }
        let mut claimed = false;
        let stored = self
            .update_connection(&connection.tenant_id, &connection.id, |c| {
                claimed = c.accepts_jobs() && nightly_due(c, now);
                if claimed {
                    c.last_scheduled_at = Some(now);
                }
                claimed
            })
            .await?;
        let Some(stored) = stored.filter(|_| claimed) else {
            return Ok(false);
        };
        match self
            .start_sync(&stored, SyncTrigger::Scheduled, false)
            .await
        {
            Ok(_) => Ok(true),
            Err(StartError::AlreadyRunning(run)) => {
                tracing::info!(connection = %stored.id, %run, "nightly pass skipped: a run is in progress");
                Ok(false)
            }
            Err(StartError::NotConnected | StartError::OutboundOnly) => Ok(false),
            Err(StartError::Engine(e)) => Err(e),
        }
    }

    /// Sets when the connection's nightly pass starts. The schedule counts from now: the
    /// next pass is at the new time's next occurrence.
    pub async fn set_nightly_time(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        at: NightlyTime,
    ) -> AdminResult<ConnectionView> {
        let now = Timestamp::now();
        let stored = self
            .update_connection(tenant, id, |c| {
                c.nightly_at = at;
                c.last_scheduled_at = Some(now);
                true
            })
            .await?
            .ok_or(AdminError::NotFound("connection"))?;
        Ok(ConnectionView::of(stored, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Provider;

    fn at(raw: &str) -> Timestamp {
        Timestamp::parse_rfc3339(raw).expect("a time")
    }

    fn made_at(raw: &str) -> Connection {
        Connection::new(
            TenantId::parse("t").expect("an id"),
            Provider::Hubspot,
            at(raw),
        )
    }

    #[test]
    fn the_nightly_pass_is_due_once_a_day_from_its_time() {
        let mut c = made_at("2026-12-01T14:00:00Z");
        assert!(
            !nightly_due(&c, at("2026-12-01T23:59:00Z")),
            "made after today's time"
        );
        assert!(!nightly_due(&c, at("2026-12-02T01:59:00Z")));
        assert!(nightly_due(&c, at("2026-12-02T02:00:00Z")));
        assert!(
            nightly_due(&c, at("2026-12-02T09:30:00Z")),
            "a late sweep catches up"
        );
        c.last_scheduled_at = Some(at("2026-12-02T02:00:00Z"));
        assert!(!nightly_due(&c, at("2026-12-02T02:15:00Z")), "once a day");
        assert!(nightly_due(&c, at("2026-12-03T02:00:00Z")));
        // A full pass completed after the time is the day's pass.
        c.last_full_sync = Some(at("2026-12-03T02:10:00Z"));
        assert!(!nightly_due(&c, at("2026-12-03T02:15:00Z")));
    }

    #[test]
    fn each_connection_keeps_its_own_time() {
        let mut c = made_at("2026-12-01T00:00:00Z");
        c.nightly_at = NightlyTime::parse("16:45").expect("a time");
        assert!(!nightly_due(&c, at("2026-12-01T16:30:00Z")));
        assert!(nightly_due(&c, at("2026-12-01T16:45:00Z")));
    }
}

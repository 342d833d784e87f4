//! The admins' notification feed. Each notification is one incident of a condition on a
//! connection: it opens when a review first sees the condition and closes when a review
//! no longer does. Reviews run wherever the conditions change (a connection written, a
//! pass ended or failed a page) and in the sweep every 15 minutes (`engine::schedule`),
//! which is what sees a pass that stopped moving. Reviews that race converge at the next one.

use std::collections::BTreeMap;
use std::time::Duration;

use super::admin::{AdminError, AdminResult};
use super::{Engine, EngineError};
use crate::model::{
    Connection, ConnectionId, ConnectionStatus, ErrorCode, Notification, NotificationId,
    NotificationKind, SyncRun, SyncRunStatus, TenantId, Timestamp,
};
use crate::ports::{PageRequest, StoreError};

/// Runs a review looks back over: the newest one, and enough before it to find the last
/// pass that ended.
pub const RUNS_REVIEWED: usize = 5;

/// The conditions a connection is in now, each with what the admin should know of it.
/// A disconnected connection has none (the admin chose it); a revoked one has only that,
/// since everything else on it follows from it.
pub fn conditions(
    connection: &Connection,
    runs_newest_first: &[SyncRun],
    now: Timestamp,
    stuck_after: Duration,
) -> BTreeMap<NotificationKind, String> {
    let mut found = BTreeMap::new();
    match connection.status {
        ConnectionStatus::Disconnected => return found,
        ConnectionStatus::Reauthorize => {
            found.insert(
                NotificationKind::ConnectionBroken,
"the provider no longer accepts our access (oauth_revoked): syncing has stopped until you reauthorize".to_owned(),
            );
            return found;
        }
        ConnectionStatus::Connected => {}
    }
    let flags = &connection.flags;
    if flags.permission_denied_at.is_some() {
        let scopes = if flags.missing_scopes.is_empty() {
            String::new()
        } else {
            format!(" (missing scopes: {})", flags.missing_scopes.join(", "))
        };
        found.insert(
            NotificationKind::PermissionDenied,
            format!(
                "the provider refused some requests for lack of access{scopes} (permission_denied)"
            ),
        );
    }
    if flags.filter_invalid_at.is_some() {
        found.insert(
            NotificationKind::FilterInvalid,
            "the company filter names a list, stage or pipeline the account no longer has (filter_invalid)".to_owned(),
        );
    }
    if flags.archives_held {
        found.insert(
            NotificationKind::ArchivesHeld,
            "a sync wants to archive more customers than the guard allows and waits for your approval".to_owned(),
        );
    }
    if let Some(detail) = interruption(runs_newest_first, now, stuck_after) {
        found.insert(NotificationKind::SyncInterrupted, detail);
    }
    found
}

/// Whether the connection's passes are interrupted: the newest one has not moved for
/// `stuck_after`, or the last one that ended was refused by the provider (until a later
/// one completes). A refusal with a notification of its own (a revoked token, a missing
/// scope, a filter naming nothing) is reported by that one alone; a pass that ended
/// without a code gave way to a newer pass or to the admin's disconnect.
fn interruption(
    runs_newest_first: &[SyncRun],
    now: Timestamp,
    stuck_after: Duration,
) -> Option<String> {
    let newest = runs_newest_first.first()?;
    if newest.status == SyncRunStatus::Running {
        let moved = newest.checkpoint.heartbeat.unwrap_or(newest.started_at);
        if now.since(moved) >= stuck_after {
            return Some(format!(
                "the full sync started {} has not moved since {moved}",
                newest.started_at
            ));
        }
    }
    let ended = runs_newest_first
        .iter()
        .find(|r| r.status != SyncRunStatus::Running)?;
    let code = ended
        .error_code
        .filter(|_| ended.status == SyncRunStatus::Failed)?;
    let reported_alone = matches!(
        code,
        ErrorCode::OauthRevoked | ErrorCode::PermissionDenied | ErrorCode::FilterInvalid
    );
    (!reported_alone).then(|| format!("the full sync started {} failed: {code}", ended.started_at))
}

/// The feed as the admin reads it: newest incident first.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NotificationFeed {
    pub unread: usize,
    pub open: usize,
    pub notifications: Vec<Notification>,
}

impl Engine {
    /// Opens a notification for each condition the connection is newly in, and closes
    /// the open ones whose condition cleared. Two reviews at once open an incident once:
    /// the second one's create loses the version check.
    pub async fn review_notifications(&self, connection: &Connection) -> Result<(), EngineError> {
        let now = Timestamp::now();
        let runs = self
            .store
            .list_sync_runs(
                &connection.tenant_id,
                &connection.id,
                PageRequest::first(RUNS_REVIEWED),
            )
            .await?
            .items;
        let current = conditions(connection, &runs, now, self.settings.stuck_pass_after);
        let feed = self
            .store
            .list_notifications(&connection.tenant_id, now)
            .await?;
        for kind in NotificationKind::ALL {
            let latest = feed
                .iter()
                .filter(|n| n.id.connection_id == connection.id && n.id.kind == kind)
                .max_by_key(|n| n.id.incident);
            let written = match (current.get(&kind), latest) {
                (Some(detail), None) => self.open(connection, kind, 1, detail, now).await,
                (Some(detail), Some(last)) if !last.is_open() => {
                    self.open(connection, kind, last.id.incident + 1, detail, now)
                        .await
                }
                (None, Some(last)) if last.is_open() => self.close(last, now).await,
                _ => Ok(()),
            };
            match written {
                Ok(()) | Err(StoreError::VersionConflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reviews a connection's notifications where a failure must not fail the caller's
    /// own work: it is logged, and the next review catches up.
    pub async fn review_notifications_or_log(&self, connection: &Connection) {
        if let Err(e) = self.review_notifications(connection).await {
            tracing::warn!(error = %e, connection = %connection.id, "could not review the connection's notifications");
        }
    }

    async fn open(
        &self,
        connection: &Connection,
        kind: NotificationKind,
        incident: u32,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let notification = Notification {
            tenant_id: connection.tenant_id.clone(),
            id: NotificationId {
                connection_id: connection.id.clone(),
                kind,
                incident,
            },
            provider: connection.provider,
            detail: detail.to_owned(),
            opened_at: now,
            closed_at: None,
            read_at: None,
            version: 0,
        };
        self.store
            .put_notification(&notification, None, now)
            .await?;
        tracing::info!(notification = %notification.id, "notification opened");
        Ok(())
    }

    async fn close(&self, open: &Notification, now: Timestamp) -> Result<(), StoreError> {
        let mut closed = open.clone();
        closed.closed_at = Some(now);
        self.store
            .put_notification(&closed, closed.expires_at(), now)
            .await?;
        tracing::info!(notification = %closed.id, "notification closed");
        Ok(())
    }

    /// The tenant's feed, newest incident first.
    pub async fn notification_feed(&self, tenant: &TenantId) -> AdminResult<NotificationFeed> {
        let mut notifications = self
            .store
            .list_notifications(tenant, Timestamp::now())
            .await?;
        notifications.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then_with(|| b.id.cmp(&a.id)));
        Ok(NotificationFeed {
            unread: notifications.iter().filter(|n| n.read_at.is_none()).count(),
            open: notifications.iter().filter(|n| n.is_open()).count(),
            notifications,
        })
    }

    /// Marks one of the tenant's notifications read.
    pub async fn mark_notification_read(
        &self,
        tenant: &TenantId,
        id: &NotificationId,
    ) -> AdminResult<Notification> {
        for _ in 0..8 {
            let now = Timestamp::now();
            let Some(found) = self
                .store
                .list_notifications(tenant, now)
                .await?
                .into_iter()
                .find(|n| n.id == *id)
            else {
                return Err(AdminError::NotFound("notification"));
            };
            match self.mark_read(found, now).await {
                Ok(stored) => return Ok(stored),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contention.into())
    }

    /// Marks every unread notification of the tenant read, from one read of the feed;
    /// one that changed meanwhile is marked on its own. Returns how many.
    pub async fn mark_all_notifications_read(&self, tenant: &TenantId) -> AdminResult<usize> {
        let now = Timestamp::now();
        let unread = self
            .store
            .list_notifications(tenant, now)
            .await?
            .into_iter()
            .filter(|n| n.read_at.is_none());
        let mut marked = 0;
        for notification in unread {
            let id = notification.id.clone();
            match self.mark_read(notification, now).await {
                Ok(_) => marked += 1,
                Err(StoreError::VersionConflict { .. }) => {
                    match self.mark_notification_read(tenant, &id).await {
                        Ok(_) => marked += 1,
                        // Closed long ago and expired meanwhile: nothing left to mark.
                        Err(AdminError::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(marked)
    }

    /// Writes `notification` read as of `now` (as it is, when it already was).
    async fn mark_read(
        &self,
        mut notification: Notification,
        now: Timestamp,
    ) -> Result<Notification, StoreError> {
        if notification.read_at.is_some() {
            return Ok(notification);
        }
        notification.read_at = Some(now);
        self.store
            .put_notification(&notification, notification.expires_at(), now)
            .await
    }

    /// Reviews one connection by id, after the caller changed something of it.
    pub async fn review_connection_notifications(&self, tenant: &TenantId, id: &ConnectionId) {
        match self.store.get_connection(tenant, id).await {
            Ok(Some(connection)) => self.review_notifications_or_log(&connection).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, connection = %id, "could not review the connection's notifications")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Provider, SyncTrigger};

    const HOUR: Duration = Duration::from_secs(3600);

    fn connected() -> Connection {
        let mut c = Connection::new(
            TenantId::parse("t").expect("an id"),
            Provider::Hubspot,
            Timestamp::from_millis(0),
        );
        c.status = ConnectionStatus::Connected;
        c
    }

    fn run(c: &Connection, status: SyncRunStatus, started_ms: i64) -> SyncRun {
        let mut r = SyncRun::start(
            c.tenant_id.clone(),
            c.id.clone(),
            SyncTrigger::Scheduled,
            Timestamp::from_millis(started_ms),
        );
        r.status = status;
        r
    }

    fn kinds(found: &BTreeMap<NotificationKind, String>) -> Vec<NotificationKind> {
        found.keys().copied().collect()
    }

    #[test]
    fn a_revoked_connection_is_one_broken_notification_and_a_disconnected_one_none() {
        let mut c = connected();
        c.flags.archives_held = true;
        let failed = run(&c, SyncRunStatus::Failed, 0);
        let now = Timestamp::from_millis(1_000);
        c.status = ConnectionStatus::Reauthorize;
        let found = conditions(&c, std::slice::from_ref(&failed), now, HOUR);
        assert_eq!(kinds(&found), vec![NotificationKind::ConnectionBroken]);
        c.status = ConnectionStatus::Disconnected;
        assert!(conditions(&c, &[failed], now, HOUR).is_empty());
    }

    #[test]
    fn each_flag_is_its_own_condition_and_names_what_is_missing() {
        let mut c = connected();
        c.flags.permission_denied_at = Some(Timestamp::from_millis(1));
        c.flags.missing_scopes = vec!["crm.lists.read".into()];
        c.flags.filter_invalid_at = Some(Timestamp::from_millis(1));
        c.flags.archives_held = true;
        let found = conditions(&c, &[], Timestamp::from_millis(2), HOUR);
        assert_eq!(
            kinds(&found),
            vec![
                NotificationKind::PermissionDenied,
                NotificationKind::FilterInvalid,
                NotificationKind::ArchivesHeld,
            ]
        );
        assert!(found[&NotificationKind::PermissionDenied].contains("crm.lists.read"));
    }

    #[test]
    fn a_refused_pass_interrupts_until_a_later_one_completes_and_a_still_pass_is_stuck() {
        let c = connected();
        let mut failed = run(&c, SyncRunStatus::Failed, 0);
        failed.error_code = Some(ErrorCode::ProviderUnavailable);
        let now = Timestamp::from_millis(10 * 60 * 1000);
        let found = conditions(&c, std::slice::from_ref(&failed), now, HOUR);
        assert!(found[&NotificationKind::SyncInterrupted].contains("provider_unavailable"));

        let running = run(&c, SyncRunStatus::Running, 60_000);
        let both = [running.clone(), failed.clone()];
        assert!(
            conditions(&c, &both, now, HOUR).contains_key(&NotificationKind::SyncInterrupted),
            "a new pass running is not yet a recovery"
        );
        let completed = run(&c, SyncRunStatus::Completed, 120_000);
        assert!(conditions(&c, &[completed, failed.clone()], now, HOUR).is_empty());
        for own in [
            ErrorCode::OauthRevoked,
            ErrorCode::PermissionDenied,
            ErrorCode::FilterInvalid,
        ] {
            failed.error_code = Some(own);
            assert!(
                conditions(&c, std::slice::from_ref(&failed), now, HOUR).is_empty(),
                "{own}"
            );
        }
        failed.error_code = None;
        assert!(
            conditions(&c, std::slice::from_ref(&failed), now, HOUR).is_empty(),
            "superseded or disconnected"
        );

        let later = Timestamp::from_millis(60_000 + HOUR.as_millis() as i64);
        let stuck = conditions(&c, std::slice::from_ref(&running), later, HOUR);
        assert!(stuck[&NotificationKind::SyncInterrupted].contains("has not moved"));
    }
}

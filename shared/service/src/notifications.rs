//! How a notification reads to the admin, in the API and the console alike.

use serde::Serialize;

use connector::{ConnectionId, Notification, NotificationKind, Provider, Timestamp};

/// The one-line heading of a notification of `kind`.
pub fn title(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::ConnectionBroken => "Connection broken: reauthorize",
        NotificationKind::PermissionDenied => "Access refused: check the app's scopes",
        NotificationKind::FilterInvalid => "Company filter names nothing: pick another",
        NotificationKind::SyncInterrupted => "Sync interrupted",
        NotificationKind::ArchivesHeld => "Archives wait for your approval",
    }
}

/// Where the admin deals with it: the integration's card in the console.
pub fn link(notification: &Notification) -> String {
    format!("/console/integrations#c-{}", notification.id.connection_id)
}

/// A notification as the admin API returns it.
#[derive(Serialize)]
pub struct NotificationView<'a> {
    pub id: String,
    pub kind: NotificationKind,
    pub title: &'static str,
    pub connection_id: &'a ConnectionId,
    pub provider: Provider,
    pub detail: &'a str,
    pub open: bool,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub read_at: Option<Timestamp>,
    pub link: String,
}

impl<'a> NotificationView<'a> {
    pub fn of(n: &'a Notification) -> Self {
        Self {
            id: n.id.to_string(),
            kind: n.id.kind,
            title: title(n.id.kind),
            connection_id: &n.id.connection_id,
            provider: n.provider,
            detail: &n.detail,
            open: n.is_open(),
            opened_at: n.opened_at,
            closed_at: n.closed_at,
            read_at: n.read_at,
            link: link(n),
        }
    }
}

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConnectionId, ParseError, Provider, TenantId, Timestamp};

/// What an admin is told about, one kind per condition of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The provider refused our tokens (`oauth_revoked`): the connection wants Reauthorize.
    ConnectionBroken,
    /// The provider refused some requests for lack of scope or access (`permission_denied`).
    PermissionDenied,
    /// The company filter names a list, stage or pipeline the account no longer has.
    FilterInvalid,
    /// The last full sync failed, or the running one has not moved for too long.
    SyncInterrupted,
    /// The guard holds a sync's archives for the admin's approval.
    ArchivesHeld,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 5] = [
        NotificationKind::ConnectionBroken,
        NotificationKind::PermissionDenied,
        NotificationKind::FilterInvalid,
        NotificationKind::SyncInterrupted,
        NotificationKind::ArchivesHeld,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::ConnectionBroken => "connection_broken",
            NotificationKind::PermissionDenied => "permission_denied",
            NotificationKind::FilterInvalid => "filter_invalid",
            NotificationKind::SyncInterrupted => "sync_interrupted",
            NotificationKind::ArchivesHeld => "archives_held",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| ParseError::new("notification kind", format!("{raw:?} is not one")))
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which notification: the connection, the condition, and the how-manyth time the
/// condition opened on that connection. Printed as `<connection>.<kind>.<incident>`, the
/// id the API and the console use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NotificationId {
    pub connection_id: ConnectionId,
    pub kind: NotificationKind,
    pub incident: u32,
}

impl NotificationId {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bad = || {
            ParseError::new(
                "notification id",
                format!("{raw:?} is not <connection>.<kind>.<number>"),
            )
        };
        let (rest, incident) = raw.rsplit_once('.').ok_or_else(bad)?;
        let (connection, kind) = rest.rsplit_once('.').ok_or_else(bad)?;
        Ok(Self {
            connection_id: ConnectionId::parse(connection)?,
            kind: NotificationKind::parse(kind)?,
            incident: incident.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.connection_id, self.kind, self.incident)
    }
}

impl std::str::FromStr for NotificationId {
    type Err = ParseError;
    fn from_str(raw: &str) -> Result<Self, ParseError> {
        Self::parse(raw)
    }
}

impl Serialize for NotificationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NotificationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// One incident of one condition on one connection: opened when the condition is first
/// seen, closed when it clears. A condition that comes back is a new incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub tenant_id: TenantId,
    pub id: NotificationId,
    pub provider: Provider,
    /// What happened, in the admin's words, as it was when the incident opened.
    pub detail: String,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub read_at: Option<Timestamp>,
    /// Optimistic-concurrency version, as for connections; 0 for one never stored.
    pub version: u64,
}

/// Closed notifications stay in the feed this long.
pub const CLOSED_NOTIFICATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl Notification {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// When the store may forget it: [`CLOSED_NOTIFICATION_TTL`] after it closed; never
    /// while it is open.
    pub fn expires_at(&self) -> Option<super::Timestamp> {
        self.closed_at.map(|at| at.plus(CLOSED_NOTIFICATION_TTL))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_print_and_parse_back() {
        let id = NotificationId {
            connection_id: ConnectionId::parse("c-1").expect("an id"),
            kind: NotificationKind::ArchivesHeld,
            incident: 3,
        };
        assert_eq!(id.to_string(), "c-1.archives_held.3");
        assert_eq!(NotificationId::parse("c-1.archives_held.3"), Ok(id));
        for bad in [
            "c-1.archives_held",
            "c-1.nope.1",
            "c 1.archives_held.1",
            "c-1.archives_held.x",
        ] {
            assert!(NotificationId::parse(bad).is_err(), "{bad}");
        }
    }
}

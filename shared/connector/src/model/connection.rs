use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    CompanyFilter, ConnectionId, FieldMapping, ObjectKind, ParseError, ProviderAccountId,
    PushSettings, SealedCredentials, SourceId, SourceRef, SyncDirection, TenantId, Timestamp,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Hubspot,
    Stripe,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Hubspot, Provider::Stripe];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Hubspot => "hubspot",
            Provider::Stripe => "stripe",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| ParseError::new("provider", format!("{raw:?} is not hubspot or stripe")))
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The banner the admin sees for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Tokens work; jobs are scheduled.
    Connected,
    /// The provider refused our tokens (`oauth_revoked`): no jobs until the admin reconnects.
    Reauthorize,
    /// Never connected, or disconnected by the admin. Data and mapping are kept.
    Disconnected,
}

/// Conditions worth a warning on a connection that is still Connected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionFlags {
    /// The OAuth user lost a scope or access (`permission_denied`); the scopes that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_scopes: Vec<String>,
    /// When the last `permission_denied` was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_denied_at: Option<Timestamp>,
    /// A run wanted to archive more than the guard allows; archives wait for the admin.
    #[serde(default)]
    pub archives_held: bool,
    /// When the company filter was last found naming a list, stage or pipeline the account
    /// does not have (`filter_invalid`); cleared when the admin sets a valid filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_invalid_at: Option<Timestamp>,
}

/// When a connection's nightly pass starts: a quarter hour of the UTC day, `"HH:MM"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NightlyTime {
    minutes: u16,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

impl NightlyTime {
    /// 02:00 UTC, the time every connection starts with.
    pub const DEFAULT: NightlyTime = NightlyTime { minutes: 120 };

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| ParseError::new("nightly time", format!("{raw:?} {why}"));
        let (hours, minutes) = raw
            .split_once(':')
            .filter(|(h, m)| h.len() == 2 && m.len() == 2)
            .ok_or_else(|| bad("is not HH:MM"))?;
        let hours: u16 = hours.parse().map_err(|_| bad("is not HH:MM"))?;
        let minutes: u16 = minutes.parse().map_err(|_| bad("is not HH:MM"))?;
        if hours > 23 || minutes > 59 {
            return Err(bad("is not a time of day"));
        }
        if !minutes.is_multiple_of(15) {
            return Err(bad(
                "is not on a quarter hour (:00, :15, :30, :45): passes start every 15 minutes",
            ));
        }
        Ok(Self {
            minutes: hours * 60 + minutes,
        })
    }

    /// This time on the UTC day `at` falls on.
    pub fn on_day_of(self, at: Timestamp) -> Timestamp {
        let midnight = at.as_millis().div_euclid(DAY_MS) * DAY_MS;
        Timestamp::from_millis(midnight + i64::from(self.minutes) * 60_000)
    }
}

impl Default for NightlyTime {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for NightlyTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl TryFrom<String> for NightlyTime {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        Self::parse(&raw)
    }
}

impl From<NightlyTime> for String {
    fn from(t: NightlyTime) -> String {
        t.to_string()
    }
}

/// One tenant's link to one provider account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub tenant_id: TenantId,
    pub id: ConnectionId,
    pub provider: Provider,
    pub status: ConnectionStatus,
    /// The provider account (HubSpot portal id, Stripe account id) once known; webhooks
    /// are routed to the connection by it.
    pub account_id: Option<ProviderAccountId>,
    pub scopes: Vec<String>,
    pub company_filter: CompanyFilter,
    pub field_mapping: FieldMapping,
    /// Inbound (the default), outbound or two-way.
    #[serde(default)]
    pub direction: SyncDirection,
    /// How pushed contacts are written, for connections that push.
    #[serde(default)]
    pub push: PushSettings,
    /// Tokens, encrypted by the provider layer. Never logged, never returned by the API.
    pub credentials: Option<SealedCredentials>,
    #[serde(default)]
    pub flags: ConnectionFlags,
    pub last_full_sync: Option<Timestamp>,
    pub last_incremental_update: Option<Timestamp>,
    /// When the nightly pass starts.
    #[serde(default)]
    pub nightly_at: NightlyTime,
    /// When the schedule last started a pass (or the admin last set its time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version: the store bumps it on every write and refuses a
    /// write whose expected version is not the stored one.
    pub version: u64,
}

/// The contact property the service owns and keys contacts by when not by email, and
/// every contact of a two-way connection (our contact's id): HubSpot's create is not
/// idempotent, so a create whose answer was lost would otherwise make a second contact
/// when retried, and a contact we created that is read back before we stored its id
/// would be taken for a new one.
pub const CONTACT_KEY_PROPERTY: &str = "sync_contact_key";

impl Connection {
    /// The provider properties a read of `kind` asks for: the mapped ones, and on a
    /// two-way connection our key on contacts.
    pub fn properties_to_read(&self, kind: ObjectKind) -> Vec<&str> {
        let mut properties = self.field_mapping.source_properties(kind);
        if kind == ObjectKind::Contact
            && self.direction == SyncDirection::TwoWay
            && !properties.contains(&CONTACT_KEY_PROPERTY)
        {
            properties.push(CONTACT_KEY_PROPERTY);
        }
        properties
    }

    /// A connection that has never been authorized, with the default mapping.
    pub fn new(tenant_id: TenantId, provider: Provider, now: Timestamp) -> Self {
        Self {
            tenant_id,
            id: ConnectionId::generate(),
            provider,
            status: ConnectionStatus::Disconnected,
            account_id: None,
            scopes: Vec::new(),
            company_filter: CompanyFilter::All,
            field_mapping: FieldMapping::default_for(provider),
            direction: SyncDirection::Inbound,
            push: PushSettings::default(),
            credentials: None,
            flags: ConnectionFlags::default(),
            last_full_sync: None,
            last_incremental_update: None,
            nightly_at: NightlyTime::DEFAULT,
            last_scheduled_at: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// A record of this connection's provider account; `None` before the account is known.
    pub fn source_ref(&self, kind: ObjectKind, source_id: &SourceId) -> Option<SourceRef> {
        Some(SourceRef {
            provider: self.provider,
            account: self.account_id.clone()?,
            kind,
            source_id: source_id.clone(),
        })
    }

    /// Whether jobs for this connection should run at all.
    pub fn accepts_jobs(&self) -> bool {
        self.status == ConnectionStatus::Connected
    }

    /// Whether provider changes are mirrored into our store (webhooks, nightly passes).
    pub fn pulls(&self) -> bool {
        self.direction.pulls()
    }

    /// Whether the product's writes are pushed to the provider.
    pub fn pushes(&self) -> bool {
        self.direction.pushes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly_times_are_quarter_hours_of_the_utc_day() {
        let t = NightlyTime::parse("03:45").expect("a time");
        assert_eq!(t.to_string(), "03:45");
        assert_eq!(NightlyTime::DEFAULT.to_string(), "02:00");
        for bad in ["3:45", "03:44", "24:00", "03:60", "ab:cd", "0345", ""] {
            assert!(NightlyTime::parse(bad).is_err(), "{bad}");
        }
        let noon = Timestamp::parse_rfc3339("2026-12-02T12:34:56Z").expect("a time");
        assert_eq!(
            t.on_day_of(noon),
            Timestamp::parse_rfc3339("2026-12-02T03:45:00Z").expect("a time")
        );
    }
}

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ParseError;

/// Which way records flow between our store and the provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncDirection {
    /// The provider is mirrored into our store (webhooks and nightly passes).
    #[default]
    Inbound,
    /// The product's writes are pushed into the provider; nothing is read back.
    Outbound,
    /// Both, with conflicts resolved last-write-wins.
    TwoWay,
}

impl SyncDirection {
    pub const ALL: [SyncDirection; 3] = [
        SyncDirection::Inbound,
        SyncDirection::Outbound,
        SyncDirection::TwoWay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncDirection::Inbound => "inbound",
            SyncDirection::Outbound => "outbound",
            SyncDirection::TwoWay => "two_way",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == raw)
            .ok_or_else(|| {
                ParseError::new(
                    "direction",
                    format!("{raw:?} is not inbound, outbound or two_way"),
                )
            })
    }

    /// Whether provider changes are read into our store.
    pub fn pulls(self) -> bool {
        self != SyncDirection::Outbound
    }

    /// Whether our writes are pushed to the provider.
    pub fn pushes(self) -> bool {
        self != SyncDirection::Inbound
    }

    /// Whether every flow of `narrower` is also a flow of `self`.
    pub fn covers(self, narrower: SyncDirection) -> bool {
        (self.pulls() || !narrower.pulls()) && (self.pushes() || !narrower.pushes())
    }

    /// The direction of one field: the connection's, narrowed by the field's own.
    pub fn narrowed_by(self, field: Option<SyncDirection>) -> SyncDirection {
        match field {
            Some(field) if self.covers(field) => field,
            Some(_) | None => self,
        }
    }
}

impl fmt::Display for SyncDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the company step does when it fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStepFailure {
    /// The contact still syncs; the company's failure is noted on the row.
    #[default]
    Skip,
    /// The whole push fails (and is retried like any failure).
    FailSync,
}

/// How a connection pushes contacts: the contact step's keys and the optional company
/// and list steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSettings {
    /// Update the provider's contact with the same email (on by default); off, an
    /// existing email is refused as `contact_exists`.
    #[serde(default = "yes")]
    pub dedupe_by_email: bool,
    /// Push contacts that have no email (skipped as `missing_email` otherwise).
    #[serde(default)]
    pub sync_without_email: bool,
    /// Without an email, find the contact by phone number instead of creating one.
    #[serde(default)]
    pub phone_fallback: bool,
    /// The company step: find or create the contact's company by domain and associate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_step: Option<OnStepFailure>,
    /// The list step: add the contact to this static list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            dedupe_by_email: true,
            sync_without_email: false,
            phone_fallback: false,
            company_step: None,
            list_id: None,
        }
    }
}

impl PushSettings {
    /// Every step and key on (what asking for write scopes ahead of a direction change
    /// covers).
    pub fn every_step() -> Self {
        Self {
            dedupe_by_email: false,
            sync_without_email: true,
            phone_fallback: true,
            company_step: Some(OnStepFailure::Skip),
            list_id: Some(String::new()),
        }
    }

    /// What is wrong with the settings before the provider is asked.
    pub fn shape_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(list) = &self.list_id
            && (list.is_empty() || list.len() > 20 || !list.bytes().all(|b| b.is_ascii_digit()))
        {
            problems.push(format!(
                "list id {list:?} is not a HubSpot list id (digits)"
            ));
        }
        if self.phone_fallback && !self.sync_without_email {
            problems.push(
                "phone_fallback applies only to contacts without an email: turn on sync_without_email"
                    .into(),
            );
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_can_narrow_its_connection_direction_but_never_widen_it() {
        use SyncDirection::*;
        assert_eq!(TwoWay.narrowed_by(Some(Inbound)), Inbound);
        assert_eq!(TwoWay.narrowed_by(Some(Outbound)), Outbound);
        assert_eq!(Inbound.narrowed_by(Some(TwoWay)), Inbound);
        assert_eq!(Outbound.narrowed_by(Some(Inbound)), Outbound);
        assert_eq!(Outbound.narrowed_by(None), Outbound);
        assert!(TwoWay.covers(Outbound) && !Outbound.covers(TwoWay) && !Inbound.covers(Outbound));
        for d in SyncDirection::ALL {
            assert_eq!(SyncDirection::parse(d.as_str()), Ok(d));
        }
        assert!(SyncDirection::parse("both").is_err());
    }

    #[test]
    fn push_settings_default_to_dedupe_by_email_and_check_their_list_id() {
        let settings: PushSettings = serde_json::from_str("{}").expect("defaults");
        assert_eq!(settings, PushSettings::default());
        assert!(settings.dedupe_by_email && settings.shape_problems().is_empty());
        let bad = PushSettings {
            list_id: Some("../x".into()),
            phone_fallback: true,
            ..PushSettings::default()
        };
        assert_eq!(bad.shape_problems().len(), 2);
    }
}

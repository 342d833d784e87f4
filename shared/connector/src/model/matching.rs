use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    ConnectionId, CustomerId, ObjectKind, ParseError, PendingMatchId, Provider, SourceId, TenantId,
    Timestamp,
};

/// A company's web domain in matching form: lower case, no scheme, no `www.`, no port,
/// path, query or trailing dot. `https://WWW.Acme.com/about` -> `acme.com`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let bad = |why: &str| ParseError::new("domain", format!("{raw:?} {why}"));
        let mut s = raw.trim().to_ascii_lowercase();
        if let Some(idx) = s.find("://") {
            s = s[idx + 3..].to_owned();
        }
        let end = s.find(['/', '?', '#']).unwrap_or(s.len());
        s.truncate(end);
        if let Some(at) = s.rfind('@') {
            s = s[at + 1..].to_owned();
        }
        if let Some(colon) = s.find(':') {
            s.truncate(colon);
        }
        let s = s.trim_end_matches('.');
        let s = s.strip_prefix("www.").unwrap_or(s);
        if s.is_empty() {
            return Err(bad("is empty"));
        }
        if !s.contains('.') {
            return Err(bad("has no dot"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || s.split('.').any(str::is_empty)
        {
            return Err(bad("is not a host name"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The domain of an email address (`ana@acme.com` -> `acme.com`).
    pub fn from_email(email: &str) -> Result<Self, ParseError> {
        match email.rsplit_once('@') {
            Some((local, host)) if !local.is_empty() => Self::parse(host),
            _ => Err(ParseError::new("email", format!("{email:?} has no domain"))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Domain {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        Self::parse(&raw)
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({})", self.0)
    }
}

/// Legal-form suffixes dropped when comparing company names.
const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "bv",
    "nv",
    "plc",
    "kg",
    "corp",
    "corporation",
    "co",
    "company",
    "srl",
    "oy",
    "ab",
    "as",
    "pty",
];

/// A company name in matching form: lower case, punctuation dropped, whitespace
/// collapsed, trailing legal forms removed. `"Acme, Inc."` and `"ACME"` match.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NormalizedName(String);

impl NormalizedName {
    /// `None` for names with nothing left to compare (empty, only punctuation).
    pub fn of(name: &str) -> Option<Self> {
        let cleaned: String = name
            .chars()
            .flat_map(char::to_lowercase)
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let mut words: Vec<&str> = cleaned.split_whitespace().collect();
        while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.contains(w)) {
            words.pop();
        }
        if words.is_empty() {
            None
        } else {
            Some(Self(words.join(" ")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NormalizedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NormalizedName({})", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingMatchStatus {
    Open,
    Resolved,
}

/// What the admin chose for an ambiguous match. It sticks: later syncs of the same
/// source record follow it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum MatchResolution {
    /// Link the source record to this existing customer.
    LinkTo { customer_id: CustomerId },
    /// None of the candidates: create a new customer for the source record.
    CreateNew,
    /// Do not mirror this source record.
    Ignore,
}

/// A source record the engine would not guess about (`match_ambiguous`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMatch {
    pub tenant_id: TenantId,
    pub id: PendingMatchId,
    pub connection_id: ConnectionId,
    pub provider: Provider,
    pub object_kind: ObjectKind,
    pub source_id: SourceId,
    /// What the source record looked like when the match was raised, for the admin.
    pub source_name: String,
    pub source_domain: Option<Domain>,
    pub candidates: Vec<CustomerId>,
    pub status: PendingMatchStatus,
    pub resolution: Option<MatchResolution>,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_normalise_to_the_bare_host() {
        let cases = [
            ("acme.com", "acme.com"),
            ("https://WWW.Acme.com/about?x=1", "acme.com"),
            ("http://shop.acme.co.uk:8080", "shop.acme.co.uk"),
            ("www.acme.com.", "acme.com"),
            ("  Acme.COM  ", "acme.com"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                Domain::parse(raw).map(|d| d.0),
                Ok(want.to_owned()),
                "{raw}"
            );
        }
        for bad in [
            "",
            "localhost",
            "acme..com",
            "ac me.com",
            "https://",
            "a_b.com",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn email_domains_are_extracted() {
        assert_eq!(
            Domain::from_email("ana@Acme.com").map(|d| d.0),
            Ok("acme.com".into())
        );
        assert!(Domain::from_email("@acme.com").is_err());
        assert!(Domain::from_email("nobody").is_err());
    }

    #[test]
    fn names_normalise_punctuation_case_and_legal_forms() {
        let n = |s: &str| NormalizedName::of(s).map(|n| n.0);
        assert_eq!(n("Acme, Inc."), Some("acme".into()));
        assert_eq!(n("ACME"), Some("acme".into()));
        assert_eq!(n("Müller  GmbH & Co. KG"), Some("müller".into()));
        assert_eq!(n("The Company"), Some("the".into()));
        assert_eq!(n("Inc"), Some("inc".into()));
        assert_eq!(n(" ,.- "), None);
    }
}

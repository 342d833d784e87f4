use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    ConnectionId, ContactId, CustomerId, InStep, ObjectKind, Provider, ProviderAccountId, SourceId,
    TargetField, TenantId, Timestamp,
};

/// One provider record, named the way its link is keyed. Provider ids repeat across
/// accounts (two HubSpot portals each have a company 101), so the account is part of the
/// name; the connection is not, so a reconnect through a new connection finds its links.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SourceRef {
    pub provider: Provider,
    pub account: ProviderAccountId,
    pub kind: ObjectKind,
    pub source_id: SourceId,
}

/// What a provider record is mirrored into.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum LinkTarget {
    Customer(CustomerId),
    Contact(ContactId),
}

/// SHA-256 of a record's mapped content, hex. Equal hash -> nothing to write.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentHash(String);

impl ContentHash {
    /// Hashes any serializable value through its canonical JSON (maps are ordered, so
    /// equal content gives equal bytes).
    pub fn of<T: Serialize>(value: &T) -> Self {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        Self(hex::encode(Sha256::digest(&bytes)))
    }

    pub fn from_hex(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.0.get(..12).unwrap_or(&self.0))
    }
}

/// The provider's version of a record: its last-modified time in epoch milliseconds
/// (HubSpot `hs_lastmodifieddate` / `updatedAt`, Stripe event `created`). An older
/// version never overwrites a newer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceVersion(pub i64);

/// Provider record -> our record, with what we last applied from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLink {
    pub tenant_id: TenantId,
    /// The connection that last wrote the link (for the log); identity is the account.
    pub connection_id: ConnectionId,
    pub provider: Provider,
    /// The provider account the record lives in (HubSpot portal, Stripe account).
    pub account_id: ProviderAccountId,
    pub object_kind: ObjectKind,
    pub source_id: SourceId,
    pub target: LinkTarget,
    pub source_version: SourceVersion,
    pub content_hash: ContentHash,
    /// The source record was deleted at the provider or left the filter; the target is archived.
    pub source_gone: bool,
    pub updated_at: Timestamp,
    /// Two-way connections: each field's value when both sides last agreed on it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub in_step: BTreeMap<TargetField, InStep>,
}

impl SourceLink {
    pub fn source_ref(&self) -> SourceRef {
        SourceRef {
            provider: self.provider,
            account: self.account_id.clone(),
            kind: self.object_kind,
            source_id: self.source_id.clone(),
        }
    }

    /// Whether a record at `version` with `hash` would change what this link recorded:
    /// newer versions always do, the same version only if the mapped content differs
    /// (the field mapping changed), older versions never.
    pub fn is_superseded_by(&self, version: SourceVersion, hash: &ContentHash) -> bool {
        version > self.source_version
            || (version == self.source_version && *hash != self.content_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_is_stable_and_content_sensitive() {
        let a = ContentHash::of(&serde_json::json!({"name": "Acme", "domain": "acme.com"}));
        let b = ContentHash::of(&serde_json::json!({"domain": "acme.com", "name": "Acme"}));
        let c = ContentHash::of(&serde_json::json!({"name": "Acme2", "domain": "acme.com"}));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 64);
    }
}

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CustomerId, Domain, Money, NormalizedName, TenantId, Timestamp};

/// Why a customer (or contact) was archived. Archiving keeps the history; only an
/// explicit "delete permanently" purges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveReason {
    /// Deleted (or archived) at the provider.
    SourceDeleted,
    /// No longer matches the connection's company filter.
    LeftFilter,
    /// Archived by an admin.
    Admin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archival {
    pub at: Timestamp,
    pub reason: ArchiveReason,
}

/// Billing fields from Stripe. MRR is per currency: a customer may pay in several.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    pub mrr: Vec<Money>,
    pub subscription_status: Option<String>,
    pub plan_names: Vec<String>,
    pub next_renewal: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
}

/// A customer of the tenant's product, mirrored from a HubSpot company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub tenant_id: TenantId,
    pub id: CustomerId,
    pub name: String,
    pub domain: Option<Domain>,
    pub owner: Option<String>,
    pub arr: Option<Money>,
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
    pub archived: Option<Archival>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version, bumped by the store on every write.
    pub version: u64,
}

impl Customer {
    pub fn new(tenant_id: TenantId, name: impl Into<String>, now: Timestamp) -> Self {
        Self {
            tenant_id,
            id: CustomerId::generate(),
            name: name.into(),
            domain: None,
            owner: None,
            arr: None,
            custom: BTreeMap::new(),
            billing: None,
            archived: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn normalized_name(&self) -> Option<NormalizedName> {
        NormalizedName::of(&self.name)
    }

    pub fn is_archived(&self) -> bool {
        self.archived.is_some()
    }
}

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Archival, ContactId, CustomerId, Provider, ProviderAccountId, SourceId, SourceVersion,
    TenantId, Timestamp,
};

/// A person at a customer, mirrored from a HubSpot contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub tenant_id: TenantId,
    pub id: ContactId,
    /// The customer of the contact's primary company, once that company is mirrored.
    pub customer_id: Option<CustomerId>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub job_title: Option<String>,
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
    pub archived: Option<Archival>,
    /// Where pushes wrote this contact: one provider record per account, updated by its
    /// id on the next push.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushed_to: Vec<PushedRecord>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
}

impl Contact {
    pub fn new(tenant_id: TenantId, now: Timestamp) -> Self {
        Self {
            tenant_id,
            id: ContactId::generate(),
            customer_id: None,
            email: None,
            first_name: None,
            last_name: None,
            phone: None,
            job_title: None,
            custom: BTreeMap::new(),
            archived: None,
            pushed_to: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}

/// A provider record one of our contacts was pushed into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedRecord {
    pub provider: Provider,
    pub account_id: ProviderAccountId,
    pub source_id: SourceId,
    /// The provider's version after our last write.
    pub version: SourceVersion,
}

impl Contact {
    /// The provider record an earlier push into `account` wrote.
    pub fn pushed_into(
        &self,
        provider: Provider,
        account: &ProviderAccountId,
    ) -> Option<&PushedRecord> {
        self.pushed_to
            .iter()
            .find(|p| p.provider == provider && p.account_id == *account)
    }

    /// Remembers where a push wrote this contact, replacing an earlier record of the account.
    pub fn remember_push(&mut self, pushed: PushedRecord) {
        self.pushed_to
            .retain(|p| !(p.provider == pushed.provider && p.account_id == pushed.account_id));
        self.pushed_to.push(pushed);
    }
}

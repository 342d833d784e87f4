use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Archival, ContactId, CustomerId, TenantId, Timestamp};

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
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Archival, ContactId, CustomerId, Provider, ProviderAccountId, SourceId, SourceVersion,
    TargetField, TenantId, Timestamp,
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
    /// When the product last wrote each field (records API, Restore): our side's time
    /// when a two-way connection resolves a conflict.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub written_at: BTreeMap<TargetField, Timestamp>,
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
            written_at: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}

impl Contact {
    /// Our value of one field, trimmed, when it has one (customer fields have none).
    pub fn value_of(&self, target: &TargetField) -> Option<&str> {
        let value = match target {
            TargetField::Email => self.email.as_deref(),
            TargetField::FirstName => self.first_name.as_deref(),
            TargetField::LastName => self.last_name.as_deref(),
            TargetField::Phone => self.phone.as_deref(),
            TargetField::JobTitle => self.job_title.as_deref(),
            TargetField::Custom(key) => self.custom.get(key).map(String::as_str),
            TargetField::Name | TargetField::Domain | TargetField::Owner | TargetField::Arr => None,
        };
        value.map(str::trim).filter(|v| !v.is_empty())
    }

    /// Stamps `at` as the write time of every field whose value differs from `before`'s:
    /// the product wrote them.
    pub fn note_writes_since(&mut self, before: &Contact, at: Timestamp) {
        let mut fields = vec![
            TargetField::Email,
            TargetField::FirstName,
            TargetField::LastName,
            TargetField::Phone,
            TargetField::JobTitle,
        ];
        fields.extend(
            self.custom
                .keys()
                .chain(before.custom.keys())
                .map(|k| TargetField::Custom(k.clone())),
        );
        for field in fields {
            if self.value_of(&field) != before.value_of(&field) {
                self.written_at.insert(field, at);
            }
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

//! Writes from the product's own backend (the records API): a contact is stored at
//! once, then queued as a push job for every connection of the tenant that pushes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::apply::id_from_parts;
use super::push::push_job;
use super::{Engine, EngineError};
use crate::model::{
    ConnectionId, Contact, ContactId, Domain, Job, JobCause, TargetField, TenantId, Timestamp,
};
use crate::ports::{ContactWrite, StoreError};

/// The longest value a field takes.
pub const MAX_FIELD_CHARS: usize = 1_000;
/// The longest idempotency key a create takes.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("contact not found")]
    NotFound,
    /// The input names a bad field or value; each problem in words.
    #[error("the contact is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("the contact was changed at the same time; try again")]
    Conflict,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for RecordsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VersionConflict { .. } => RecordsError::Conflict,
            other => RecordsError::Engine(other.into()),
        }
    }
}

/// The fields of a contact the product writes. In an update, an absent field is left
/// as it is and `null` (or `""`) clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default, with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default, with = "present")]
    pub first_name: Option<Option<String>>,
    #[serde(default, with = "present")]
    pub last_name: Option<Option<String>>,
    #[serde(default, with = "present")]
    pub phone: Option<Option<String>>,
    #[serde(default, with = "present")]
    pub job_title: Option<Option<String>>,
    /// Tenant-defined fields (`custom:<key>` in a mapping), by key.
    #[serde(default)]
    pub custom: BTreeMap<String, Option<String>>,
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
mod present {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// A contact as the records API answers it, with the pushes its write queued.
#[derive(Clone, Debug, Serialize)]
pub struct ContactWritten {
    /// False when a create's idempotency key named a contact stored before (a retry).
    pub created: bool,
    pub contact: Contact,
    /// The connections a push job was queued for.
    pub pushes: Vec<ConnectionId>,
}

fn cleaned(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl ContactInput {
    /// Every problem of the input at once.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let fields = [
            ("email", &self.email),
            ("first_name", &self.first_name),
            ("last_name", &self.last_name),
            ("phone", &self.phone),
            ("job_title", &self.job_title),
        ];
        for (name, value) in fields {
            if let Some(Some(v)) = value
                && v.chars().count() > MAX_FIELD_CHARS
            {
                problems.push(format!(
                    "{name} is longer than {MAX_FIELD_CHARS} characters"
                ));
            }
        }
        if let Some(Some(email)) = &self.email
            && !email.trim().is_empty()
            && Domain::from_email(email.trim()).is_err()
        {
            problems.push(format!("email {email:?} is not an email address"));
        }
        for (key, value) in &self.custom {
            if TargetField::parse(&format!("custom:{key}")).is_err() {
                problems.push(format!(
                    "custom field {key:?} is not a key (letters, digits, '_' and '-', at most 64)"
                ));
            }
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FIELD_CHARS)
            {
                problems.push(format!(
                    "custom field {key} is longer than {MAX_FIELD_CHARS} characters"
                ));
            }
        }
        problems
    }

    fn apply_to(self, contact: &mut Contact) {
        let set = |field: &mut Option<String>, value: Option<Option<String>>| {
            if let Some(value) = value {
                *field = cleaned(value);
            }
        };
        set(
            &mut contact.email,
            self.email.map(|e| e.map(|e| e.to_lowercase())),
        );
        set(&mut contact.first_name, self.first_name);
        set(&mut contact.last_name, self.last_name);
        set(&mut contact.phone, self.phone);
        set(&mut contact.job_title, self.job_title);
        for (key, value) in self.custom {
            match cleaned(value) {
                Some(value) => contact.custom.insert(key, value),
                None => contact.custom.remove(&key),
            };
        }
    }
}

impl Engine {
    /// Stores a new contact and queues its pushes. With an idempotency key the contact's
    /// id is derived from it, so a create retried after a failure (stored, but the
    /// answer or the queueing was lost) finds the contact it stored, queues its pushes
    /// again (they are upserts) and never stores a second one.
    pub async fn create_contact_record(
        &self,
        tenant: &TenantId,
        input: ContactInput,
        idempotency_key: Option<&str>,
    ) -> Result<ContactWritten, RecordsError> {
        let mut problems = input.problems();
        if let Some(key) = idempotency_key
            && (key.is_empty()
                || key.len() > MAX_IDEMPOTENCY_KEY
                || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            problems.push(format!(
                "the idempotency key is not 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ));
        }
        if !problems.is_empty() {
            return Err(RecordsError::Invalid(problems));
        }
        let now = Timestamp::now();
        let mut contact = Contact::new(tenant.clone(), now);
        if let Some(key) = idempotency_key {
            contact.id = ContactId::parse(id_from_parts(&["contact write", tenant.as_str(), key]))
                .map_err(EngineError::from)?;
        }
        let blank = contact.clone();
        input.apply_to(&mut contact);
        contact.note_writes_since(&blank, now);
        contact.customer_id = self.customer_by_email(tenant, &contact).await?;
        let written = self
            .store
            .write_contact(ContactWrite {
                contact: &contact,
                expected_version: 0,
                link: None,
            })
            .await;
        match written {
            Ok(stored) => self.queue_pushes(stored, true).await,
            Err(StoreError::VersionConflict { .. } | StoreError::AlreadyExists { .. })
                if idempotency_key.is_some() =>
            {
                let stored = self.contact_record(tenant, &contact.id).await?;
                self.queue_pushes(stored, false).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Updates a stored contact (absent fields kept) and queues its pushes.
    pub async fn update_contact_record(
        &self,
        tenant: &TenantId,
        id: &ContactId,
        input: ContactInput,
    ) -> Result<ContactWritten, RecordsError> {
        let problems = input.problems();
        if !problems.is_empty() {
            return Err(RecordsError::Invalid(problems));
        }
        let mut contact = self.contact_record(tenant, id).await?;
        let before = contact.clone();
        input.apply_to(&mut contact);
        if contact.customer_id.is_none() || contact.email != before.email {
            contact.customer_id = self.customer_by_email(tenant, &contact).await?;
        }
        let now = Timestamp::now();
        contact.note_writes_since(&before, now);
        contact.updated_at = now;
        let expected_version = contact.version;
        let stored = self
            .store
            .write_contact(ContactWrite {
                contact: &contact,
                expected_version,
                link: None,
            })
            .await?;
        self.queue_pushes(stored, false).await
    }

    /// One contact of the tenant.
    pub async fn contact_record(
        &self,
        tenant: &TenantId,
        id: &ContactId,
    ) -> Result<Contact, RecordsError> {
        self.store
            .get_contact(tenant, id)
            .await?
            .ok_or(RecordsError::NotFound)
    }

    /// The one live customer whose domain is the email's, if exactly one is.
    async fn customer_by_email(
        &self,
        tenant: &TenantId,
        contact: &Contact,
    ) -> Result<Option<crate::model::CustomerId>, RecordsError> {
        let Some(domain) = contact
            .email
            .as_deref()
            .and_then(|e| Domain::from_email(e).ok())
        else {
            return Ok(contact.customer_id.clone());
        };
        let live: Vec<_> = self
            .store
            .find_customers_by_domain(tenant, &domain)
            .await?
            .into_iter()
            .filter(|c| !c.is_archived())
            .collect();
        Ok(match live.as_slice() {
            [one] => Some(one.id.clone()),
            _ => None,
        })
    }

    /// A push job per connection of the tenant that pushes and is connected.
    async fn queue_pushes(
        &self,
        contact: Contact,
        created: bool,
    ) -> Result<ContactWritten, RecordsError> {
        let now = Timestamp::now();
        let jobs: Vec<Job> = self
            .store
            .list_connections(&contact.tenant_id)
            .await?
            .into_iter()
            .filter(|c| c.accepts_jobs() && c.pushes() && self.writer(c.provider).is_some())
            .map(|c| push_job(&c, &contact.id, JobCause::Write, now))
            .collect();
        if !jobs.is_empty() {
            self.enqueue_records(&jobs).await?;
        }
        Ok(ContactWritten {
            created,
            pushes: jobs.into_iter().map(|j| j.connection_id).collect(),
            contact,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_keeps_absent_fields_and_clears_null_ones() {
        let mut contact = Contact::new(
            TenantId::parse("acme").expect("tenant"),
            Timestamp::from_millis(0),
        );
        let first: ContactInput = serde_json::from_str(
            r#"{"email":" Ana@Acme.com ","first_name":"Ana","phone":"+1 555","custom":{"tier":"gold"}}"#,
        )
        .expect("input");
        assert!(first.problems().is_empty());
        first.apply_to(&mut contact);
        assert_eq!(contact.email.as_deref(), Some("ana@acme.com"));
        let second: ContactInput =
            serde_json::from_str(r#"{"phone":null,"custom":{"tier":""}}"#).expect("input");
        second.apply_to(&mut contact);
        assert_eq!(contact.first_name.as_deref(), Some("Ana"));
        assert_eq!(contact.phone, None);
        assert!(contact.custom.is_empty());
    }

    #[test]
    fn bad_input_is_refused_with_every_problem_named() {
        let input: ContactInput =
            serde_json::from_str(r#"{"email":"not-an-email","custom":{"bad key":"x"}}"#)
                .expect("input");
        assert_eq!(input.problems().len(), 2);
        assert!(serde_json::from_str::<ContactInput>(r#"{"emial":"a@b.co"}"#).is_err());
    }
}

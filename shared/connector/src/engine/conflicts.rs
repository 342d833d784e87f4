//! The conflict audit as the admin sees it: a connection's conflicts of the last 30
//! days, and Restore, which writes a conflict's losing value back as a new change of
//! ours (pushed like any write of the product).

use serde::Serialize;

use super::Engine;
use super::admin::{AdminError, AdminResult};
use super::mapping::{self, MappedValues};
use super::push::push_job;
use crate::model::{
    Conflict, ConflictId, ConnectionId, Contact, JobCause, JobId, TenantId, Timestamp,
};
use crate::ports::{ContactWrite, Page, PageRequest, StoreError};

/// How often a Restore re-reads the contact after losing a write race.
const RESTORE_ATTEMPTS: usize = 8;

/// What a Restore did.
#[derive(Clone, Debug, Serialize)]
pub struct Restored {
    pub conflict: Conflict,
    pub contact: Contact,
    /// The push that writes the restored value into the provider.
    pub push_job_id: JobId,
}

impl Engine {
    /// A connection's live conflicts, newest first.
    pub async fn conflicts(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        page: PageRequest,
    ) -> AdminResult<Page<Conflict>> {
        self.admin_connection(tenant, connection).await?;
        Ok(self
            .store
            .list_conflicts(tenant, connection, page, Timestamp::now())
            .await?)
    }

    /// Writes the losing value back into our contact as the product's newest write of the
    /// field, then pushes it. Refused (409) once restored, or when the connection no
    /// longer pushes.
    pub async fn restore_conflict(
        &self,
        tenant: &TenantId,
        id: &ConflictId,
    ) -> AdminResult<Restored> {
        let now = Timestamp::now();
        let conflict = self
            .store
            .get_conflict(tenant, id, now)
            .await?
            .ok_or(AdminError::NotFound("conflict"))?;
        if let Some(at) = conflict.restored_at {
            return Err(AdminError::Conflict(format!(
                "the conflict was already restored at {at}"
            )));
        }
        let connection = self
            .admin_connection(tenant, &conflict.connection_id)
            .await?;
        if !(connection.accepts_jobs() && connection.pushes()) {
            return Err(AdminError::Conflict(
                "the connection no longer pushes (disconnected or inbound): nothing can be written back".into(),
            ));
        }
        let (_, lost) = conflict.loser();
        let value = MappedValues {
            values: [(conflict.field.clone(), lost.value.clone())].into(),
            problems: Vec::new(),
        };
        let contact = self.write_restored(tenant, &conflict, &value, now).await?;
        let mut marked = conflict.clone();
        marked.restored_at = Some(now);
        let conflict = self.store.put_conflict(&marked, now).await?;
        let job = push_job(&connection, &contact.id, JobCause::Restore, now);
        self.enqueue_records(std::slice::from_ref(&job))
            .await
            .map_err(AdminError::Engine)?;
        Ok(Restored {
            conflict,
            contact,
            push_job_id: job.id,
        })
    }

    async fn write_restored(
        &self,
        tenant: &TenantId,
        conflict: &Conflict,
        value: &MappedValues,
        now: Timestamp,
    ) -> AdminResult<Contact> {
        for _ in 0..RESTORE_ATTEMPTS {
            let mut contact = self
                .store
                .get_contact(tenant, &conflict.contact_id)
                .await?
                .ok_or(AdminError::NotFound("contact"))?;
            mapping::apply_to_contact(&mut contact, value);
            contact.written_at.insert(conflict.field.clone(), now);
            contact.updated_at = now;
            let expected_version = contact.version;
            match self
                .store
                .write_contact(ContactWrite {
                    contact: &contact,
                    expected_version,
                    link: None,
                })
                .await
            {
                Ok(stored) => return Ok(stored),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AdminError::Conflict(
            "the contact kept changing while restoring; try again".into(),
        ))
    }
}

//! The contact step of a two-way push. The provider's record is read first and
//! resolved field by field, so only the fields where our value is newer are written,
//! and the fields where the provider's value is newer come back to us. The link keeps
//! what both sides agree on, which is also how our own webhook echo is recognised.

use std::collections::BTreeMap;

use super::mapping::Schema;
use super::push::{PushError, outbound_properties, pushed_record};
use super::two_way::{self, Resolution};
use super::{Engine, EngineError, account_of, source_of};
use crate::model::{
    CONTACT_KEY_PROPERTY, Connection, Contact, ContentHash, ErrorCode, InStep, LinkTarget,
    ObjectKind, Side, SourceLink, SourceRef, TargetField, Timestamp,
};
use crate::ports::{ContactWrite, StoreError};
use crate::provider::{ContactKey, Fetched, RecordWriter, SourceRecord, Written};

/// How often settling a push re-reads our contact after losing a write race.
const SETTLE_ATTEMPTS: usize = 8;

impl Engine {
    /// Writes the contact step of a two-way push and settles both sides.
    pub(super) async fn two_way_contact_step(
        &self,
        writer: &dyn RecordWriter,
        connection: &Connection,
        contact: &Contact,
        schema: &Schema,
        key: ContactKey,
    ) -> Result<Written, PushError> {
        let now = Timestamp::now();
        let Some(record) = self.synced_record(connection, contact).await? else {
            return self
                .first_two_way_push(writer, connection, contact, schema, key, now)
                .await;
        };
        let source = source_of(connection, ObjectKind::Contact, &record.id)?;
        let link = self.store.get_link(&contact.tenant_id, &source).await?;
        let agreed = match &link {
            Some(l) if l.target == LinkTarget::Contact(contact.id.clone()) => l.in_step.clone(),
            // Another contact of ours holds the record's two-way state (it was mirrored
            // before this one was created with the same email): this one only pushes.
            Some(_) => {
                let properties = outbound_properties(connection, contact, schema)?;
                return Ok(writer
                    .write_contact(connection, ContactKey::Id(record.id.clone()), &properties)
                    .await?);
            }
            None => BTreeMap::new(),
        };
        let resolution = two_way::resolve(connection, schema, contact, &record, &agreed, now);
        let written = if resolution.push.is_empty() {
            Written {
                id: record.id.clone(),
                created: false,
                version: record.version,
            }
        } else {
            writer
                .write_contact(
                    connection,
                    ContactKey::Id(record.id.clone()),
                    &resolution.push,
                )
                .await?
        };
        two_way::record_conflicts(
            self.store.as_ref(),
            connection,
            contact,
            &record,
            resolution.conflicts.clone(),
            now,
        )
        .await?;
        self.settle(connection, contact, &source, &written, agreed, resolution)
            .await?;
        Ok(written)
    }

    /// The provider's live record this contact is synced with, if it has one: the one
    /// an earlier push wrote, or the one it was mirrored from.
    async fn synced_record(
        &self,
        connection: &Connection,
        contact: &Contact,
    ) -> Result<Option<SourceRecord>, EngineError> {
        let account = account_of(connection)?;
        let id = match contact.pushed_into(connection.provider, account) {
            Some(pushed) => Some(pushed.source_id.clone()),
            None => self
                .store
                .links_to(&contact.tenant_id, &LinkTarget::Contact(contact.id.clone()))
                .await?
                .into_iter()
                .find(|l| {
                    l.provider == connection.provider
                        && l.account_id == *account
                        && l.object_kind == ObjectKind::Contact
                        && !l.source_gone
                })
                .map(|l| l.source_id),
        };
        let Some(id) = id else {
            return Ok(None);
        };
        let properties = connection.properties_to_read(ObjectKind::Contact);
        let fetched = self
            .provider(connection.provider)?
            .fetch(
                connection,
                ObjectKind::Contact,
                std::slice::from_ref(&id),
                &properties,
            )
            .await?;
        Ok(fetched.into_iter().find_map(|(_, f)| match f {
            Fetched::Found(record) if !record.archived => Some(record),
            _ => None,
        }))
    }

    /// A contact the provider does not have yet (or no longer has): written by our key,
    /// or with dedupe by email into the contact that has its email.
    async fn first_two_way_push(
        &self,
        writer: &dyn RecordWriter,
        connection: &Connection,
        contact: &Contact,
        schema: &Schema,
        key: ContactKey,
        now: Timestamp,
    ) -> Result<Written, PushError> {
        let properties = outbound_properties(connection, contact, schema)?;
        let written = match writer.write_contact(connection, key, &properties).await {
            Err(e) if e.code == ErrorCode::ContactExists && connection.push.dedupe_by_email => {
                let Some(existing) = e.existing_id().cloned() else {
                    return Err(e.into());
                };
                let mut keyed = properties.clone();
                keyed.insert(CONTACT_KEY_PROPERTY.to_owned(), contact.id.to_string());
                writer
                    .write_contact(connection, ContactKey::Id(existing), &keyed)
                    .await?
            }
            other => other?,
        };
        let pushed: BTreeMap<TargetField, InStep> = two_way::two_way_fields(connection, schema)
            .filter(|e| properties.contains_key(&e.source_property))
            .map(|e| {
                let agreed = InStep {
                    value: contact.value_of(&e.target).map(str::to_owned),
                    at: contact.written_at.get(&e.target).copied().unwrap_or(now),
                    by: Side::Ours,
                };
                (e.target.clone(), agreed)
            })
            .collect();
        let source = source_of(connection, ObjectKind::Contact, &written.id)?;
        let resolution = Resolution {
            pushed_in_step: pushed,
            ..Resolution::default()
        };
        self.settle(
            connection,
            contact,
            &source,
            &written,
            BTreeMap::new(),
            resolution,
        )
        .await?;
        Ok(written)
    }

    /// Stores the outcome: the provider's winning values into our contact (unless the
    /// product wrote the field again meanwhile: that write's own push follows), the
    /// agreed values on the link, and where the contact was pushed. A link an apply of a
    /// newer version stored meanwhile is left alone.
    async fn settle(
        &self,
        connection: &Connection,
        resolved: &Contact,
        source: &SourceRef,
        written: &Written,
        mut agreed: BTreeMap<TargetField, InStep>,
        resolution: Resolution,
    ) -> Result<(), PushError> {
        agreed.extend(resolution.in_step);
        agreed.extend(resolution.pushed_in_step);
        let tenant = &connection.tenant_id;
        for _ in 0..SETTLE_ATTEMPTS {
            let Some(mut contact) = self.store.get_contact(tenant, &resolved.id).await? else {
                return Err(PushError::ContactGone(resolved.id.clone()));
            };
            let mut take = resolution.take.clone();
            take.values
                .retain(|field, _| contact.written_at.get(field) == resolved.written_at.get(field));
            super::mapping::apply_to_contact(&mut contact, &take);
            contact.remember_push(pushed_record(source, written));
            contact.updated_at = Timestamp::now();
            let link = SourceLink {
                tenant_id: tenant.clone(),
                connection_id: connection.id.clone(),
                provider: source.provider,
                account_id: source.account.clone(),
                object_kind: ObjectKind::Contact,
                source_id: written.id.clone(),
                target: LinkTarget::Contact(contact.id.clone()),
                source_version: written.version,
                content_hash: ContentHash::of(&("two-way push", &agreed)),
                source_gone: false,
                updated_at: contact.updated_at,
                in_step: agreed.clone(),
            };
            let expected_version = contact.version;
            match self
                .store
                .write_contact(ContactWrite {
                    contact: &contact,
                    expected_version,
                    link: Some(&link),
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::VersionConflict { .. } | StoreError::AlreadyExists { .. }) => {
                    continue;
                }
                Err(StoreError::StaleSource { .. }) => {
                    return self.remember_push(connection, &resolved.id, written).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Contention.into())
    }
}

/// Whether a webhook event our own app caused is the echo of a value we pushed: the
/// link agrees on `value` for the property's field and our side wrote it.
pub fn is_echo(
    connection: &Connection,
    link: &SourceLink,
    property: Option<&str>,
    value: Option<&str>,
) -> bool {
    let Some(property) = property else {
        // A creation or other record-level event: ours if the link holds a value we wrote.
        return link.in_step.values().any(|s| s.by == Side::Ours);
    };
    if property == CONTACT_KEY_PROPERTY {
        return true;
    }
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    connection
        .field_mapping
        .for_object(ObjectKind::Contact)
        .filter(|e| e.source_property == property)
        .any(|e| {
            link.in_step
                .get(&e.target)
                .is_some_and(|s| s.by == Side::Ours && s.value.as_deref() == value)
        })
}

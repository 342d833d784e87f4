//! [`RecordWriter`] for HubSpot: contacts upserted by email (or created, or found by
//! phone), companies upserted by a unique property the service owns (HubSpot does not
//! dedupe companies by domain), v4 default associations and static list memberships.
//! Every write is keyed, so a retried one changes nothing twice.

use std::collections::BTreeMap;

use async_trait::async_trait;
use connector::provider::{
    ContactKey, ListAdd, OwnKey, ProviderError, ProviderResult, RecordWriter, Written,
};
use connector::{
    Connection, ErrorCode, ObjectKind, PushSettings, SourceId, SourceVersion, SyncDirection,
};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::error;
use crate::http::{Budget, Call};
use crate::provider::{
    HubSpotProvider, account_key, list_path_id, parse_source_id, parse_time, plural,
};
use crate::wire::{Filter, FilterGroup, ObjectPage, SearchRequest};

const EMAIL: &str = "email";
const PHONE: &str = "phone";

/// A record as a write answers it (`new` only in upserts).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrittenObject {
    id: String,
    updated_at: Option<String>,
    #[serde(default)]
    new: bool,
}

#[derive(Debug, Deserialize)]
struct UpsertAnswer {
    #[serde(default)]
    results: Vec<WrittenObject>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyProperty {
    #[serde(default)]
    has_unique_value: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInfo {
    processing_type: String,
}

#[derive(Debug, Deserialize)]
struct ListAnswer {
    list: ListInfo,
}

/// HubSpot's answer to a membership write (`recordsIdsAdded` is its spelling).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipChange {
    #[serde(default)]
    records_ids_added: Vec<String>,
    #[serde(default)]
    record_ids_missing: Vec<String>,
}

fn written(object: WrittenObject, created: bool) -> ProviderResult<Written> {
    let id = parse_source_id(&object.id)?;
    let version = object
        .updated_at
        .as_deref()
        .and_then(parse_time)
        .ok_or_else(|| error::internal(format!("HubSpot's write of {id} has no updatedAt")))?;
    Ok(Written {
        id,
        created,
        version: SourceVersion(version.as_millis()),
    })
}

fn single(answer: UpsertAnswer, what: &str) -> ProviderResult<WrittenObject> {
    answer
        .results
        .into_iter()
        .next()
        .ok_or_else(|| error::internal(format!("HubSpot's upsert of {what} answered no record")))
}

fn required<'a>(properties: &'a BTreeMap<String, String>, name: &str) -> ProviderResult<&'a str> {
    properties
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| error::internal(format!("a contact written by {name} needs a {name}")))
}

impl HubSpotProvider {
    async fn upsert(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        id_property: &str,
        key: &str,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written> {
        let call = Call::post_json(
            format!("/crm/v3/objects/{}/batch/upsert", plural(kind)?),
            json!({ "inputs": [{ "idProperty": id_property, "id": key, "properties": properties }] }),
        );
        let reply = self.call(connection, Budget::General, &call).await?;
        let object = single(reply.json()?, key)?;
        let created = object.new;
        written(object, created)
    }

    /// Creates or updates the contact whose key property holds our key.
    async fn upsert_by_own_key(
        &self,
        connection: &Connection,
        key: &OwnKey,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written> {
        self.ensure_key_property(connection, ObjectKind::Contact, &key.property)
            .await?;
        let mut properties = properties.clone();
        properties.insert(key.property.clone(), key.value.clone());
        self.upsert(
            connection,
            ObjectKind::Contact,
            &key.property,
            &key.value,
            &properties,
        )
        .await
    }

    async fn update_contact(
        &self,
        connection: &Connection,
        id: &SourceId,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written> {
        let call = Call::send_json(
            Method::PATCH,
            format!("/crm/v3/objects/contacts/{id}"),
            json!({ "properties": properties }),
        );
        let reply = self.call(connection, Budget::General, &call).await?;
        written(reply.json()?, false)
    }

    /// The live contact whose phone is exactly `phone`, if one is (search lags writes by
    /// seconds, so two pushes of one new phone moments apart can both create).
    async fn contact_with_phone(
        &self,
        connection: &Connection,
        phone: &str,
    ) -> ProviderResult<Option<SourceId>> {
        let request = SearchRequest {
            filter_groups: vec![FilterGroup {
                filters: vec![Filter {
                    property_name: PHONE.to_owned(),
                    operator: "EQ",
                    value: phone.to_owned(),
                }],
            }],
            sorts: Vec::new(),
            properties: vec!["hs_object_id"],
            limit: 1,
            after: "0".to_owned(),
        };
        let body = serde_json::to_value(&request).map_err(|e| error::internal(e.to_string()))?;
        let call = Call::post_json("/crm/v3/objects/contacts/search", body);
        let page: ObjectPage = self.call(connection, Budget::Search, &call).await?.json()?;
        page.results
            .first()
            .map(|o| parse_source_id(&o.id))
            .transpose()
    }

    /// Creates the company key property unless the portal has it; one that exists but is
    /// not unique cannot key companies.
    async fn ensure_key_property(
        &self,
        connection: &Connection,
        kind: ObjectKind,
        name: &str,
    ) -> ProviderResult<()> {
        let cache_key = (
            account_key(connection).to_owned(),
            format!("{}.{name}", plural(kind)?),
        );
        if self.inner.key_properties.lock().contains(&cache_key) {
            return Ok(());
        }
        let objects = plural(kind)?;
        let (group, label, purpose) = match kind {
            ObjectKind::Company => (
                "companyinformation",
                "Sync company key",
                "one company per key (the domain), so pushed contacts never duplicate companies",
            ),
            _ => (
                "contactinformation",
                "Sync contact key",
                "one contact per record of ours, so a retried push never creates a second one",
            ),
        };
        let path = format!("/crm/v3/properties/{objects}/{}", property_path_name(name)?);
        match self
            .call(connection, Budget::General, &Call::get(path))
            .await
        {
            Ok(reply) => {
                let property: KeyProperty = reply.json()?;
                if !property.has_unique_value {
                    return Err(ProviderError::new(
                        ErrorCode::FieldMappingInvalid,
                        format!(
                            "the key property {objects}.{name} exists in HubSpot but does not require unique values: pick another name"
                        ),
                    ));
                }
            }
            Err(e) if e.code == ErrorCode::SourceDeleted => {
                let call = Call::post_json(
                    format!("/crm/v3/properties/{objects}"),
                    json!({
                        "name": name,
                        "label": label,
                        "type": "string",
                        "fieldType": "text",
                        "groupName": group,
                        "hasUniqueValue": true,
                        "description": format!("Written by the sync service: {purpose}."),
                    }),
                );
                match self.call(connection, Budget::General, &call).await {
                    Ok(_) => {}
                    // created meanwhile by another push
                    Err(e) if e.status == Some(409) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        self.inner.key_properties.lock().insert(cache_key);
        Ok(())
    }
}

/// A property name as it goes into a path: HubSpot's names are lowercase letters,
/// digits and `_`.
fn property_path_name(name: &str) -> ProviderResult<&str> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(name)
    } else {
        Err(ProviderError::new(
            ErrorCode::FieldMappingInvalid,
            format!("{name:?} is not a HubSpot property name"),
        ))
    }
}

#[async_trait]
impl RecordWriter for HubSpotProvider {
    fn write_scopes(&self, direction: SyncDirection, settings: &PushSettings) -> Vec<String> {
        let mut scopes = vec!["crm.objects.contacts.write"];
        if direction == SyncDirection::TwoWay
            || !settings.dedupe_by_email
            || settings.sync_without_email
        {
            // Contacts not keyed by email, and every two-way contact, carry a contact
            // property we own.
            scopes.extend(["crm.schemas.contacts.read", "crm.schemas.contacts.write"]);
        }
        if settings.company_step.is_some() {
            scopes.extend([
                "crm.objects.companies.write",
                "crm.schemas.companies.read",
                "crm.schemas.companies.write",
            ]);
        }
        if settings.list_id.is_some() {
            scopes.extend(["crm.lists.read", "crm.lists.write"]);
        }
        scopes.into_iter().map(str::to_owned).collect()
    }

    async fn write_contact(
        &self,
        connection: &Connection,
        key: ContactKey,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written> {
        match key {
            ContactKey::Email => {
                let email = required(properties, EMAIL)?;
                self.upsert(connection, ObjectKind::Contact, EMAIL, email, properties)
                    .await
            }
            ContactKey::Own(key) => self.upsert_by_own_key(connection, &key, properties).await,
            ContactKey::Phone(key) => {
                let phone = required(properties, PHONE)?;
                match self.contact_with_phone(connection, phone).await? {
                    Some(id) => self.update_contact(connection, &id, properties).await,
                    None => self.upsert_by_own_key(connection, &key, properties).await,
                }
            }
            ContactKey::Id(id) => self.update_contact(connection, &id, properties).await,
        }
    }

    async fn write_company(
        &self,
        connection: &Connection,
        key_property: &str,
        key: &str,
        properties: &BTreeMap<String, String>,
    ) -> ProviderResult<Written> {
        self.ensure_key_property(connection, ObjectKind::Company, key_property)
            .await?;
        let mut properties = properties.clone();
        properties.insert(key_property.to_owned(), key.to_owned());
        self.upsert(
            connection,
            ObjectKind::Company,
            key_property,
            key,
            &properties,
        )
        .await
    }

    async fn associate_company(
        &self,
        connection: &Connection,
        contact: &SourceId,
        company: &SourceId,
    ) -> ProviderResult<()> {
        let call = Call::new(
            Method::PUT,
            format!("/crm/v4/objects/contacts/{contact}/associations/default/companies/{company}"),
        );
        self.call(connection, Budget::General, &call).await?;
        Ok(())
    }

    async fn add_to_list(
        &self,
        connection: &Connection,
        list_id: &str,
        contact: &SourceId,
    ) -> ProviderResult<ListAdd> {
        let list_id = list_path_id(list_id)?;
        let not_found = |e: ProviderError| {
            if e.code == ErrorCode::SourceDeleted {
                let mut gone = e.clone();
                gone.code = ErrorCode::FieldMappingInvalid;
                gone.message = format!(
                    "the push's list {list_id} does not exist in HubSpot: pick another list"
                );
                gone
            } else {
                e
            }
        };
        let info = Call::get(format!("/crm/v3/lists/{list_id}"));
        let list: ListAnswer = self
            .call(connection, Budget::General, &info)
            .await
            .map_err(not_found)?
            .json()?;
        if list.list.processing_type == "DYNAMIC" {
            return Ok(ListAdd::SkippedDynamic);
        }
        let call = Call::send_json(
            Method::PUT,
            format!("/crm/v3/lists/{list_id}/memberships/add"),
            json!([contact.as_str()]),
        );
        let change: MembershipChange = self
            .call(connection, Budget::General, &call)
            .await
            .map_err(not_found)?
            .json()?;
        let id = contact.as_str().to_owned();
        if change.records_ids_added.contains(&id) {
            Ok(ListAdd::Added)
        } else if change.record_ids_missing.contains(&id) {
            Err(error::internal(format!(
                "HubSpot does not know contact {contact} to add it to list {list_id}"
            )))
        } else {
            Ok(ListAdd::AlreadyMember)
        }
    }

    async fn archive_contact(&self, connection: &Connection, id: &SourceId) -> ProviderResult<()> {
        let call = Call::new(Method::DELETE, format!("/crm/v3/objects/contacts/{id}"));
        self.call(connection, Budget::General, &call).await?;
        Ok(())
    }
}

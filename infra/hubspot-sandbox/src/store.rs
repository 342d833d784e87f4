//! The portal's CRM data and every mutation on it. Each mutation records the webhook events
//! HubSpot would emit for it (as [`EventDraft`]s, turned into deliveries by `webhooks`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use crate::clock::{iso, now_ms};
use crate::model::{
    COMPUTED_PROPERTIES, CrmList, ObjectKind, Owner, PropertyChange, PropertyDef, Record,
};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

/// One event as the CRM produced it; `webhooks` adds ids, subscription and attempt number.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDraft {
    pub kind: ObjectKind,
    /// `creation`, `deletion`, `propertyChange`, `merge`, `restore`, `associationChange`.
    pub action: &'static str,
    pub object_id: u64,
    pub occurred_ms: i64,
    pub change_source: String,
    /// Extra payload fields (`propertyName`, `mergedObjectIds`, ...).
    pub fields: Map<String, Value>,
    /// A `propertyChange` that is part of a creation.
    pub on_create: bool,
}

#[derive(Default)]
pub struct Store {
    pub companies: BTreeMap<u64, Record>,
    pub contacts: BTreeMap<u64, Record>,
    /// Merged-away id -> the id that absorbed it.
    pub merged_into: HashMap<(ObjectKind, u64), u64>,
    pub company_contacts: BTreeMap<u64, BTreeSet<u64>>,
    pub contact_companies: BTreeMap<u64, BTreeSet<u64>>,
    /// Contact -> its primary company.
    pub primary_company: HashMap<u64, u64>,
    pub properties: BTreeMap<ObjectKind, Vec<PropertyDef>>,
    pub owners: Vec<Owner>,
    pub lists: BTreeMap<u64, CrmList>,
    pub next_id: u64,
    pub last_ms: i64,
    pub events: Vec<EventDraft>,
}

pub type Props = BTreeMap<String, String>;

impl Store {
    pub fn records(&self, kind: ObjectKind) -> &BTreeMap<u64, Record> {
        match kind {
            ObjectKind::Companies => &self.companies,
            ObjectKind::Contacts => &self.contacts,
        }
    }

    pub fn records_mut(&mut self, kind: ObjectKind) -> &mut BTreeMap<u64, Record> {
        match kind {
            ObjectKind::Companies => &mut self.companies,
            ObjectKind::Contacts => &mut self.contacts,
        }
    }

    /// A mutation timestamp: wall clock, never going backwards.
    pub fn tick(&mut self) -> i64 {
        self.last_ms = self.last_ms.max(now_ms());
        self.last_ms
    }

    pub fn allocate_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Follows merges: the id that now holds `id`'s data.
    pub fn resolve(&self, kind: ObjectKind, id: u64) -> u64 {
        let mut current = id;
        for _ in 0..64 {
            match self.merged_into.get(&(kind, current)) {
                Some(next) => current = *next,
                None => break,
            }
        }
        current
    }

    pub fn property(&self, kind: ObjectKind, name: &str) -> Option<&PropertyDef> {
        self.properties
            .get(&kind)
            .and_then(|defs| defs.iter().find(|d| d.name == name))
    }

    /// A defined, not deleted property.
    pub fn is_live_property(&self, kind: ObjectKind, name: &str) -> bool {
        self.property(kind, name).is_some_and(|d| !d.archived)
    }

    pub fn value(&self, kind: ObjectKind, record: &Record, name: &str) -> Option<String> {
        if kind == ObjectKind::Companies && name == "num_associated_contacts" {
            let live = self
                .company_contacts
                .get(&record.id)
                .map(|ids| {
                    ids.iter()
                        .filter(|c| self.contacts.get(c).is_some_and(|r| !r.is_archived()))
                        .count()
                })
                .unwrap_or(0);
            return Some(live.to_string());
        }
        record.value(kind, name)
    }

    /// The `properties` object of a response: requested names that exist (null when
    /// empty) plus the ones HubSpot always includes.
    pub fn render_properties(
        &self,
        kind: ObjectKind,
        record: &Record,
        requested: Option<&[String]>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        let mut put = |name: &str| {
            if self.is_live_property(kind, name) {
                let value = self
                    .value(kind, record, name)
                    .map_or(Value::Null, Value::String);
                out.insert(name.to_owned(), value);
            }
        };
        match requested {
            None => kind.default_properties().iter().for_each(|n| put(n)),
            Some(names) => {
                kind.always_properties().iter().for_each(|n| put(n));
                names.iter().for_each(|n| put(n));
            }
        }
        out
    }

    /// `propertiesWithHistory` for the requested settable properties: the last write of
    /// each, newest first (this sandbox keeps one entry per property).
    pub fn render_history(&self, kind: ObjectKind, record: &Record, names: &[String]) -> Value {
        let mut out = Map::new();
        for name in names.iter().filter(|n| self.is_live_property(kind, n)) {
            let entries: Vec<Value> = record
                .last_changes
                .get(name)
                .map(|c| {
                    json!({
                        "value": c.value,
                        "timestamp": iso(c.at_ms),
                        "sourceType": c.source,
                    })
                })
                .into_iter()
                .collect();
            out.insert(name.clone(), Value::Array(entries));
        }
        Value::Object(out)
    }

    /// `SimplePublicObject`.
    pub fn render(&self, kind: ObjectKind, record: &Record, requested: Option<&[String]>) -> Value {
        let mut out = json!({
            "id": record.id.to_string(),
            "properties": self.render_properties(kind, record, requested),
            "createdAt": iso(record.created_ms),
            "updatedAt": iso(record.updated_ms),
            "archived": record.is_archived(),
        });
        if let Some(at) = record.archived_ms {
            out["archivedAt"] = json!(iso(at));
        }
        out
    }

    /// Live (not archived) records associated with `id`.
    pub fn associated(&self, kind: ObjectKind, id: u64) -> Vec<u64> {
        let (index, others) = match kind {
            ObjectKind::Companies => (&self.company_contacts, &self.contacts),
            ObjectKind::Contacts => (&self.contact_companies, &self.companies),
        };
        index
            .get(&id)
            .map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|o| others.get(o).is_some_and(|r| !r.is_archived()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn is_primary(&self, company: u64, contact: u64) -> bool {
        self.primary_company.get(&contact) == Some(&company)
    }

    fn emit(
        &mut self,
        kind: ObjectKind,
        action: &'static str,
        object_id: u64,
        occurred_ms: i64,
        source: &str,
        fields: Map<String, Value>,
    ) {
        self.events.push(EventDraft {
            kind,
            action,
            object_id,
            occurred_ms,
            change_source: source.to_owned(),
            fields,
            on_create: false,
        });
    }

    fn check_settable(&self, kind: ObjectKind, props: &Props) -> Result<(), StoreError> {
        for name in props.keys() {
            if COMPUTED_PROPERTIES.contains(&name.as_str()) || name == "num_associated_contacts" {
                return Err(StoreError::Invalid(format!("{name} is read-only")));
            }
            if !self.is_live_property(kind, name) {
                return Err(StoreError::Invalid(format!(
                    "Property \"{name}\" does not exist"
                )));
            }
        }
        Ok(())
    }

    /// Inserts a record as if created at `created_ms` (seeding), without events.
    pub fn insert_seeded(
        &mut self,
        kind: ObjectKind,
        props: Props,
        created_ms: i64,
        updated_ms: i64,
    ) -> u64 {
        let id = self.allocate_id();
        let last_changes = props
            .iter()
            .map(|(name, value)| (name.clone(), PropertyChange::seeded(value, created_ms)))
            .collect();
        let record = Record {
            id,
            props,
            created_ms,
            updated_ms,
            archived_ms: None,
            merged_ids: Vec::new(),
            last_changes,
        };
        self.records_mut(kind).insert(id, record);
        id
    }

    pub fn create(
        &mut self,
        kind: ObjectKind,
        props: Props,
        source: &str,
    ) -> Result<u64, StoreError> {
        self.check_settable(kind, &props)?;
        let now = self.tick();
        let props: Props = props.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let id = self.insert_seeded(kind, props.clone(), now, now);
        if let Some(record) = self.records_mut(kind).get_mut(&id) {
            for (name, value) in &props {
                record.note_change(name, value, now, source);
            }
        }
        let mut fields = Map::new();
        fields.insert("changeFlag".into(), json!("NEW"));
        self.emit(kind, "creation", id, now, source, fields);
        for (name, value) in props {
            self.emit_property_change(kind, id, now, source, &name, &value, true);
        }
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_property_change(
        &mut self,
        kind: ObjectKind,
        id: u64,
        at: i64,
        source: &str,
        name: &str,
        value: &str,
        on_create: bool,
    ) {
        let mut fields = Map::new();
        fields.insert("propertyName".into(), json!(name));
        fields.insert("propertyValue".into(), json!(value));
        self.events.push(EventDraft {
            kind,
            action: "propertyChange",
            object_id: id,
            occurred_ms: at,
            change_source: source.to_owned(),
            fields,
            on_create,
        });
    }

    fn live_mut(&mut self, kind: ObjectKind, id: u64) -> Result<&mut Record, StoreError> {
        self.records_mut(kind)
            .get_mut(&id)
            .filter(|r| !r.is_archived())
            .ok_or_else(|| StoreError::NotFound(format!("{} {id}", kind.singular())))
    }

    /// Sets properties (an empty value clears one); returns the names that changed.
    pub fn update(
        &mut self,
        kind: ObjectKind,
        id: u64,
        props: Props,
        source: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.check_settable(kind, &props)?;
        let now = self.tick();
        let record = self.live_mut(kind, id)?;
        let mut changed = Vec::new();
        for (name, value) in props {
            let before = record.props.get(&name).cloned().unwrap_or_default();
            if before == value {
                continue;
            }
            if value.is_empty() {
                record.props.remove(&name);
            } else {
                record.props.insert(name.clone(), value.clone());
            }
            record.note_change(&name, &value, now, source);
            changed.push((name, value));
        }
        if !changed.is_empty() {
            record.updated_ms = now;
        }
        for (name, value) in &changed {
            self.emit_property_change(kind, id, now, source, name, value, false);
        }
        Ok(changed.into_iter().map(|(n, _)| n).collect())
    }

    /// Moves a record to the recycle bin. Like HubSpot, this does not touch `hs_lastmodifieddate`.
    pub fn archive(&mut self, kind: ObjectKind, id: u64, source: &str) -> Result<(), StoreError> {
        let now = self.tick();
        let record = self.live_mut(kind, id)?;
        record.archived_ms = Some(now);
        self.emit(kind, "deletion", id, now, source, Map::new());
        Ok(())
    }

    pub fn restore(&mut self, kind: ObjectKind, id: u64, source: &str) -> Result<(), StoreError> {
        let now = self.tick();
        let record = self
            .records_mut(kind)
            .get_mut(&id)
            .filter(|r| r.is_archived())
            .ok_or_else(|| StoreError::NotFound(format!("archived {} {id}", kind.singular())))?;
        record.archived_ms = None;
        record.updated_ms = now;
        self.emit(kind, "restore", id, now, source, Map::new());
        Ok(())
    }

    /// Merges `merged` into `primary`. The survivor keeps the primary's values and takes the
    /// merged record's where the primary has none; with `new_id` it also gets a fresh id.
    /// Returns the survivor's id.
    pub fn merge(
        &mut self,
        kind: ObjectKind,
        primary: u64,
        merged: u64,
        new_id: bool,
        source: &str,
    ) -> Result<u64, StoreError> {
        if primary == merged {
            return Err(StoreError::Invalid(
                "cannot merge a record with itself".into(),
            ));
        }
        self.live_mut(kind, merged)?;
        self.live_mut(kind, primary)?;
        let now = self.tick();
        let absorbed = self
            .records_mut(kind)
            .remove(&merged)
            .ok_or_else(|| StoreError::NotFound(format!("{} {merged}", kind.singular())))?;
        let mut survivor = self
            .records_mut(kind)
            .remove(&primary)
            .ok_or_else(|| StoreError::NotFound(format!("{} {primary}", kind.singular())))?;
        let mut moved = 0;
        for (name, value) in &absorbed.props {
            if !survivor.props.contains_key(name) {
                survivor.props.insert(name.clone(), value.clone());
                if let Some(change) = absorbed.last_changes.get(name) {
                    survivor.last_changes.insert(name.clone(), change.clone());
                }
                moved += 1;
            }
        }
        survivor.merged_ids.push(merged);
        survivor
            .merged_ids
            .extend(absorbed.merged_ids.iter().copied());
        survivor.updated_ms = now;
        survivor.created_ms = survivor.created_ms.min(absorbed.created_ms);
        let survivor_id = if new_id { self.allocate_id() } else { primary };
        if new_id {
            survivor.merged_ids.push(primary);
        }
        survivor.id = survivor_id;
        self.records_mut(kind).insert(survivor_id, survivor);
        self.merged_into.insert((kind, merged), survivor_id);
        if new_id {
            self.merged_into.insert((kind, primary), survivor_id);
        }
        self.move_links(kind, merged, survivor_id);
        if new_id {
            self.move_links(kind, primary, survivor_id);
        }
        let mut fields = Map::new();
        fields.insert("primaryObjectId".into(), json!(primary));
        fields.insert("mergedObjectIds".into(), json!([merged]));
        fields.insert("newObjectId".into(), json!(survivor_id));
        fields.insert("numberOfPropertiesMoved".into(), json!(moved));
        self.emit(kind, "merge", primary, now, source, fields);
        self.emit(kind, "deletion", merged, now, source, Map::new());
        Ok(survivor_id)
    }

    /// Re-points associations and list memberships of `from` to `to` (after a merge).
    fn move_links(&mut self, kind: ObjectKind, from: u64, to: u64) {
        let (index, reverse) = match kind {
            ObjectKind::Companies => (&mut self.company_contacts, &mut self.contact_companies),
            ObjectKind::Contacts => (&mut self.contact_companies, &mut self.company_contacts),
        };
        if let Some(others) = index.remove(&from) {
            for other in &others {
                if let Some(set) = reverse.get_mut(other) {
                    set.remove(&from);
                    set.insert(to);
                }
            }
            index.entry(to).or_default().extend(others);
        }
        match kind {
            ObjectKind::Companies => {
                for company in self.primary_company.values_mut() {
                    if *company == from {
                        *company = to;
                    }
                }
            }
            ObjectKind::Contacts => {
                if let Some(company) = self.primary_company.remove(&from) {
                    self.primary_company.entry(to).or_insert(company);
                }
            }
        }
        for list in self.lists.values_mut().filter(|l| l.object == kind) {
            if let Some(at) = list.members.remove(&from) {
                list.members.entry(to).or_insert(at);
                list.first_added.entry(to).or_insert(at);
            }
        }
    }

    fn emit_association(
        &mut self,
        company: u64,
        contact: u64,
        removed: bool,
        primary: bool,
        at: i64,
        source: &str,
    ) {
        for (kind, from, to, label) in [
            (
                ObjectKind::Companies,
                company,
                contact,
                "COMPANY_TO_CONTACT",
            ),
            (ObjectKind::Contacts, contact, company, "CONTACT_TO_COMPANY"),
        ] {
            let mut fields = Map::new();
            fields.insert("associationType".into(), json!(label));
            fields.insert("fromObjectId".into(), json!(from));
            fields.insert("toObjectId".into(), json!(to));
            fields.insert("associationRemoved".into(), json!(removed));
            fields.insert("isPrimaryAssociation".into(), json!(primary));
            self.emit(kind, "associationChange", from, at, source, fields);
        }
    }

    fn touch(&mut self, kind: ObjectKind, id: u64, at: i64) {
        if let Some(r) = self.records_mut(kind).get_mut(&id) {
            r.updated_ms = at;
        }
    }

    /// Associates a company and a contact (unlabeled; `primary` also makes it the
    /// contact's primary company, which HubSpot reports as a second event pair).
    pub fn associate(
        &mut self,
        company: u64,
        contact: u64,
        primary: bool,
        source: &str,
    ) -> Result<(), StoreError> {
        self.live_mut(ObjectKind::Companies, company)?;
        self.live_mut(ObjectKind::Contacts, contact)?;
        let now = self.tick();
        let added = self
            .company_contacts
            .entry(company)
            .or_default()
            .insert(contact);
        self.contact_companies
            .entry(contact)
            .or_default()
            .insert(company);
        if added {
            self.emit_association(company, contact, false, false, now, source);
        }
        if primary && !self.is_primary(company, contact) {
            if let Some(previous) = self.primary_company.insert(contact, company) {
                self.emit_association(previous, contact, true, true, now, source);
            }
            self.emit_association(company, contact, false, true, now, source);
            self.set_primary_company_property(contact, Some(company), now, source);
        }
        self.touch(ObjectKind::Companies, company, now);
        self.touch(ObjectKind::Contacts, contact, now);
        Ok(())
    }

    pub fn disassociate(
        &mut self,
        company: u64,
        contact: u64,
        source: &str,
    ) -> Result<(), StoreError> {
        let removed = self
            .company_contacts
            .get_mut(&company)
            .is_some_and(|set| set.remove(&contact));
        if !removed {
            return Err(StoreError::NotFound(format!(
                "association company {company} - contact {contact}"
            )));
        }
        if let Some(set) = self.contact_companies.get_mut(&contact) {
            set.remove(&company);
        }
        let now = self.tick();
        self.drop_primary_at(company, contact, now, source);
        self.emit_association(company, contact, true, false, now, source);
        self.touch(ObjectKind::Companies, company, now);
        self.touch(ObjectKind::Contacts, contact, now);
        Ok(())
    }

    /// Takes the Primary label off a company and contact pair that stays associated.
    pub fn drop_primary(&mut self, company: u64, contact: u64, source: &str) {
        if self.is_primary(company, contact) {
            let now = self.tick();
            self.drop_primary_at(company, contact, now, source);
            self.touch(ObjectKind::Contacts, contact, now);
        }
    }

    fn drop_primary_at(&mut self, company: u64, contact: u64, at: i64, source: &str) {
        if self.is_primary(company, contact) {
            self.primary_company.remove(&contact);
            self.emit_association(company, contact, true, true, at, source);
            self.set_primary_company_property(contact, None, at, source);
        }
    }

    fn set_primary_company_property(
        &mut self,
        contact: u64,
        company: Option<u64>,
        at: i64,
        source: &str,
    ) {
        let value = company.map(|c| c.to_string()).unwrap_or_default();
        if let Some(record) = self.contacts.get_mut(&contact) {
            if value.is_empty() {
                record.props.remove("associatedcompanyid");
            } else {
                record
                    .props
                    .insert("associatedcompanyid".into(), value.clone());
            }
            self.emit_property_change(
                ObjectKind::Contacts,
                contact,
                at,
                source,
                "associatedcompanyid",
                &value,
                false,
            );
        }
    }

    pub fn create_list(
        &mut self,
        name: String,
        object: ObjectKind,
        processing_type: String,
    ) -> u64 {
        let now = self.tick();
        let id = self.lists.keys().last().map_or(1, |last| last + 1);
        self.lists.insert(
            id,
            CrmList {
                id,
                name,
                object,
                processing_type,
                version: 1,
                created_ms: now,
                updated_ms: now,
                members: BTreeMap::new(),
                first_added: BTreeMap::new(),
            },
        );
        id
    }

    /// Adds or removes a record from a list. HubSpot sends no webhook for this.
    pub fn set_list_membership(
        &mut self,
        list_id: u64,
        record_id: u64,
        member: bool,
    ) -> Result<bool, StoreError> {
        let now = self.tick();
        let list = self
            .lists
            .get_mut(&list_id)
            .ok_or_else(|| StoreError::NotFound(format!("list {list_id}")))?;
        let kind = list.object;
        let exists = match kind {
            ObjectKind::Companies => self.companies.contains_key(&record_id),
            ObjectKind::Contacts => self.contacts.contains_key(&record_id),
        };
        let Some(list) = self.lists.get_mut(&list_id) else {
            return Err(StoreError::NotFound(format!("list {list_id}")));
        };
        if member && !exists {
            return Err(StoreError::NotFound(format!(
                "{} {record_id}",
                kind.singular()
            )));
        }
        let changed = if member {
            list.first_added.entry(record_id).or_insert(now);
            list.members.insert(record_id, now).is_none()
        } else {
            list.members.remove(&record_id).is_some()
        };
        if changed {
            list.updated_ms = now;
        }
        Ok(changed)
    }

    pub fn delete_property(&mut self, kind: ObjectKind, name: &str) -> Result<(), StoreError> {
        let now = self.tick();
        let def = self
            .properties
            .get_mut(&kind)
            .and_then(|defs| defs.iter_mut().find(|d| d.name == name && !d.archived))
            .ok_or_else(|| StoreError::NotFound(format!("property {name}")))?;
        def.archived = true;
        def.archived_at = Some(iso(now));
        def.updated_at = iso(now);
        Ok(())
    }

    /// Changes a property's `type` / `fieldType` (and options for enumerations).
    pub fn retype_property(
        &mut self,
        kind: ObjectKind,
        name: &str,
        new_type: &str,
        field_type: &str,
        options: Option<Vec<crate::model::PropertyOption>>,
    ) -> Result<(), StoreError> {
        let now = self.tick();
        let def = self
            .properties
            .get_mut(&kind)
            .and_then(|defs| defs.iter_mut().find(|d| d.name == name && !d.archived))
            .ok_or_else(|| StoreError::NotFound(format!("property {name}")))?;
        def.kind = new_type.to_owned();
        def.field_type = field_type.to_owned();
        if let Some(options) = options {
            def.options = options;
        } else if new_type != "enumeration" && new_type != "bool" {
            def.options.clear();
        }
        def.updated_at = iso(now);
        Ok(())
    }
}

//! The records and metadata the sandbox serves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The two CRM object types the sandbox stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    Companies,
    Contacts,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 2] = [ObjectKind::Companies, ObjectKind::Contacts];

    /// Path segment: `companies` / `contacts`; also accepts the singular and the type id.
    pub fn parse(segment: &str) -> Option<Self> {
        match segment.to_ascii_lowercase().as_str() {
            "companies" | "company" | "0-2" => Some(Self::Companies),
            "contacts" | "contact" | "0-1" => Some(Self::Contacts),
            _ => None,
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Self::Companies => "companies",
            Self::Contacts => "contacts",
        }
    }

    /// Prefix of webhook subscription types (`company.creation`).
    pub fn singular(self) -> &'static str {
        match self {
            Self::Companies => "company",
            Self::Contacts => "contact",
        }
    }

    pub fn type_id(self) -> &'static str {
        match self {
            Self::Companies => "0-2",
            Self::Contacts => "0-1",
        }
    }

    pub fn read_scope(self) -> &'static str {
        match self {
            Self::Companies => "crm.objects.companies.read",
            Self::Contacts => "crm.objects.contacts.read",
        }
    }

    pub fn write_scope(self) -> &'static str {
        match self {
            Self::Companies => "crm.objects.companies.write",
            Self::Contacts => "crm.objects.contacts.write",
        }
    }

    pub fn schema_scope(self) -> &'static str {
        match self {
            Self::Companies => "crm.schemas.companies.read",
            Self::Contacts => "crm.schemas.contacts.read",
        }
    }

    pub fn schema_write_scope(self) -> &'static str {
        match self {
            Self::Companies => "crm.schemas.companies.write",
            Self::Contacts => "crm.schemas.contacts.write",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::Companies => Self::Contacts,
            Self::Contacts => Self::Companies,
        }
    }

    /// Properties returned when a call names none.
    pub fn default_properties(self) -> &'static [&'static str] {
        match self {
            Self::Companies => &[
                "name",
                "domain",
                "createdate",
                "hs_lastmodifieddate",
                "hs_object_id",
            ],
            Self::Contacts => &[
                "firstname",
                "lastname",
                "email",
                "lastmodifieddate",
                "hs_object_id",
                "createdate",
            ],
        }
    }

    /// Properties every response carries even when the call names others.
    pub fn always_properties(self) -> &'static [&'static str] {
        match self {
            Self::Companies => &["createdate", "hs_lastmodifieddate", "hs_object_id"],
            Self::Contacts => &["createdate", "lastmodifieddate", "hs_object_id"],
        }
    }
}

/// Properties the sandbox computes from the record envelope; they cannot be set.
pub const COMPUTED_PROPERTIES: &[&str] = &[
    "hs_object_id",
    "createdate",
    "hs_lastmodifieddate",
    "lastmodifieddate",
    "hs_merged_object_ids",
];

/// Properties HubSpot does not let an app subscribe to.
pub const UNSUBSCRIBABLE_PROPERTIES: &[&str] = &[
    "hs_lastmodifieddate",
    "lastmodifieddate",
    "num_unique_conversion_events",
    "hs_object_id",
    "createdate",
    "hs_merged_object_ids",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub id: u64,
    /// Settable property values (strings, as HubSpot stores them).
    pub props: BTreeMap<String, String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub archived_ms: Option<i64>,
    /// Ids absorbed by merges (`hs_merged_object_ids`).
    pub merged_ids: Vec<u64>,
    /// The last write of each settable property (`propertiesWithHistory` shows it).
    pub last_changes: BTreeMap<String, PropertyChange>,
}

/// One entry of a property's history: the value, when it was set and by what.
#[derive(Clone, Debug, PartialEq)]
pub struct PropertyChange {
    pub value: String,
    pub at_ms: i64,
    /// HubSpot's `sourceType`: `INTEGRATION` for writes with an app's token, `CRM_UI`
    /// for edits in the portal, `IMPORT` for seeded records.
    pub source: String,
}

impl PropertyChange {
    pub fn seeded(value: &str, at_ms: i64) -> Self {
        Self {
            value: value.to_owned(),
            at_ms,
            source: "IMPORT".to_owned(),
        }
    }
}

impl Record {
    /// Remembers a write of `name` (an empty value clears it, and is history too).
    pub fn note_change(&mut self, name: &str, value: &str, at_ms: i64, source: &str) {
        self.last_changes.insert(
            name.to_owned(),
            PropertyChange {
                value: value.to_owned(),
                at_ms,
                source: source.to_owned(),
            },
        );
    }

    pub fn is_archived(&self) -> bool {
        self.archived_ms.is_some()
    }

    /// A property value as the API shows it, computed ones included.
    pub fn value(&self, kind: ObjectKind, name: &str) -> Option<String> {
        match name {
            "hs_object_id" => Some(self.id.to_string()),
            "createdate" => Some(crate::clock::iso(self.created_ms)),
            "hs_lastmodifieddate" => Some(crate::clock::iso(self.updated_ms)),
            "lastmodifieddate" if kind == ObjectKind::Contacts => {
                Some(crate::clock::iso(self.updated_ms))
            }
            "hs_merged_object_ids" if !self.merged_ids.is_empty() => Some(
                self.merged_ids
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
            _ => self.props.get(name).cloned(),
        }
    }

    /// Epoch ms of a datetime property, for filters and sorts.
    pub fn time_value(&self, name: &str) -> Option<i64> {
        match name {
            "createdate" => Some(self.created_ms),
            "hs_lastmodifieddate" | "lastmodifieddate" => Some(self.updated_ms),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyOption {
    pub label: String,
    pub value: String,
    pub display_order: i32,
    pub hidden: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModificationMetadata {
    pub archivable: bool,
    pub read_only_definition: bool,
    pub read_only_value: bool,
}

/// A property definition in HubSpot's `Property` shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub field_type: String,
    pub group_name: String,
    pub description: String,
    pub options: Vec<PropertyOption>,
    pub display_order: i32,
    pub calculated: bool,
    pub external_options: bool,
    pub has_unique_value: bool,
    pub hidden: bool,
    pub hubspot_defined: bool,
    pub form_field: bool,
    pub archived: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    pub modification_metadata: ModificationMetadata,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub name: String,
    pub primary: bool,
}

/// `PublicOwner`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub user_id: u64,
    pub user_id_including_inactive: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub teams: Vec<Team>,
    pub created_at: String,
    pub updated_at: String,
    pub archived: bool,
}

/// An ILS list and its members (record id -> membership time, ms).
#[derive(Clone, Debug, PartialEq)]
pub struct CrmList {
    pub id: u64,
    pub name: String,
    pub object: ObjectKind,
    /// `MANUAL`, `DYNAMIC` or `SNAPSHOT`.
    pub processing_type: String,
    pub version: u32,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub members: BTreeMap<u64, i64>,
    /// First time each record ever joined (for record memberships).
    pub first_added: BTreeMap<u64, i64>,
}

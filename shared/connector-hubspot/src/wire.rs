//! HubSpot's JSON shapes, as far as this client reads them. Every field HubSpot may omit
//! is optional here; unknown fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `SimplePublicObject` (list, get, batch read, search results).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmObject {
    pub id: String,
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
    pub updated_at: Option<String>,
    #[serde(default)]
    pub archived: bool,
    /// When asked for with `propertiesWithHistory`: each property's writes, newest first.
    #[serde(default)]
    pub properties_with_history: BTreeMap<String, Vec<PropertyHistoryEntry>>,
    /// List and get only, when asked for with `associations=`: per object type.
    #[serde(default)]
    pub associations: BTreeMap<String, InlineAssociations>,
}

/// One write of a property (`ValueWithTimestamp`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyHistoryEntry {
    pub timestamp: String,
}

/// The associations a list or get returns inline (`CollectionResponseAssociatedId`); more
/// than one page of them carries its own `paging`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InlineAssociations {
    #[serde(default)]
    pub results: Vec<InlineAssociation>,
    pub paging: Option<Paging>,
}

/// One inline association; a record can appear twice, under a labeled and an
/// `_unlabeled` type.
#[derive(Debug, Clone, Deserialize)]
pub struct InlineAssociation {
    pub id: serde_json::Value,
    #[serde(rename = "type", default)]
    pub label: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Paging {
    pub next: Option<NextPage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NextPage {
    /// Search sends it as a string; accept a number too.
    pub after: serde_json::Value,
}

impl Paging {
    pub fn next_after(paging: Option<&Paging>) -> Option<String> {
        match paging?.next.as_ref()?.after.clone() {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A page of a list or search.
#[derive(Debug, Clone, Deserialize)]
pub struct ObjectPage {
    #[serde(default)]
    pub results: Vec<CrmObject>,
    pub paging: Option<Paging>,
}

/// `BatchResponseSimplePublicObject` (200) or `...WithErrors` (207).
#[derive(Debug, Clone, Deserialize)]
pub struct BatchReadResponse {
    #[serde(default)]
    pub results: Vec<CrmObject>,
}

// ---- search

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest<'a> {
    pub filter_groups: Vec<FilterGroup>,
    pub sorts: Vec<Sort<'a>>,
    pub properties: Vec<&'a str>,
    pub limit: u32,
    pub after: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilterGroup {
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub property_name: String,
    pub operator: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sort<'a> {
    pub property_name: &'a str,
    pub direction: &'static str,
}

// ---- associations v4

#[derive(Debug, Clone, Deserialize)]
pub struct AssociationBatchResponse {
    #[serde(default)]
    pub results: Vec<AssociationBatchResult>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssociationBatchResult {
    pub from: FromId,
    #[serde(default)]
    pub to: Vec<AssociatedObject>,
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FromId {
    pub id: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociatedObject {
    pub to_object_id: serde_json::Value,
    #[serde(default)]
    pub association_types: Vec<AssociationType>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationType {
    pub type_id: Option<i64>,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AssociationPage {
    #[serde(default)]
    pub results: Vec<AssociatedObject>,
    pub paging: Option<Paging>,
}

/// An id HubSpot may send as a JSON string or number.
pub fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

// ---- properties, owners, lists

#[derive(Debug, Clone, Deserialize)]
pub struct PropertyList {
    #[serde(default)]
    pub results: Vec<Property>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Property {
    pub name: String,
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub property_type: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default, rename = "modificationMetadata")]
    pub modification: Option<ModificationMetadata>,
}

/// Whether a property's value can be written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModificationMetadata {
    #[serde(default)]
    pub read_only_value: bool,
}

/// `GET /crm/v3/properties/{objectType}/{name}`, for an enumeration's options.
#[derive(Debug, Clone, Deserialize)]
pub struct PropertyWithOptions {
    #[serde(default)]
    pub options: Vec<PropertyOption>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PropertyOption {
    pub value: String,
    pub label: String,
    #[serde(default)]
    pub hidden: bool,
}

/// `POST /crm/v3/lists/search`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSearchPage {
    #[serde(default)]
    pub lists: Vec<WireList>,
    #[serde(default)]
    pub has_more: bool,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireList {
    pub list_id: serde_json::Value,
    pub name: String,
    pub object_type_id: Option<String>,
}

/// `GET /crm/v3/pipelines/{objectType}`.
#[derive(Debug, Clone, Deserialize)]
pub struct PipelineList {
    #[serde(default)]
    pub results: Vec<WirePipeline>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WirePipeline {
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub stages: Vec<WireStage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireStage {
    pub id: String,
    pub label: String,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OwnerPage {
    #[serde(default)]
    pub results: Vec<WireOwner>,
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireOwner {
    pub id: serde_json::Value,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default)]
    pub archived: bool,
}

/// `GET /crm/v3/lists/{id}/memberships`: current entries are objects, older ones bare ids.
#[derive(Debug, Clone, Deserialize)]
pub struct MembershipPage {
    #[serde(default)]
    pub results: Vec<Membership>,
    pub paging: Option<Paging>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Membership {
    Entry {
        #[serde(rename = "recordId")]
        record_id: serde_json::Value,
    },
    Bare(serde_json::Value),
}

impl Membership {
    pub fn record_id(&self) -> Option<String> {
        match self {
            Membership::Entry { record_id } => id_text(record_id),
            Membership::Bare(v) => id_text(v),
        }
    }
}

/// `GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships`.
#[derive(Debug, Clone, Deserialize)]
pub struct RecordMemberships {
    #[serde(default)]
    pub results: Vec<RecordMembership>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordMembership {
    pub list_id: serde_json::Value,
}

// ---- OAuth

#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccessTokenInfo {
    pub hub_id: serde_json::Value,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// One entry of an error body's `errors`: `MISSING_SCOPES` names the scopes there, a
/// write's `VALIDATION_ERROR` one refused property (`code`, `context.propertyName`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetail {
    pub message: Option<String>,
    pub code: Option<String>,
    pub context: Option<ErrorContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorContext {
    #[serde(default)]
    pub required_granular_scopes: Vec<String>,
    #[serde(default)]
    pub property_name: Vec<String>,
}

/// One refused property inside the older `message` text (`Property values were not
/// valid: [...]`), which also carries the value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyInvalidProperty {
    pub name: Option<String>,
    pub error: Option<String>,
    pub message: Option<String>,
    pub property_value: Option<String>,
}

/// The error envelope of CRM calls and the token endpoint (every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default)]
    pub errors: Vec<ErrorDetail>,
    pub status: Option<String>,
    pub message: Option<String>,
    pub category: Option<String>,
    pub sub_category: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub policy_name: Option<String>,
}

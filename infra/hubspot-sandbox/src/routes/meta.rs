//! Properties, owners and pipelines.

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crm::{object_kind, parse_json};
use super::query::Query;
use super::{AppState, Granted};
use crate::clock::iso;
use crate::error::ApiError;
use crate::model::{ModificationMetadata, ObjectKind, PropertyDef, PropertyOption};

fn properties_kind(granted: &Granted, segment: &str) -> Result<ObjectKind, ApiError> {
    let kind = object_kind(segment)?;
    granted.require(&[kind.schema_scope(), kind.read_scope()])?;
    Ok(kind)
}

pub async fn properties(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let kind = properties_kind(&granted, &object_type)?;
    let q = Query::parse(raw.as_deref());
    let archived = q.flag("archived");
    let wanted = q.list("properties");
    let world = shared.lock();
    let results: Vec<Value> = world
        .store
        .properties
        .get(&kind)
        .into_iter()
        .flatten()
        .filter(|d| d.archived == archived)
        .filter(|d| wanted.as_ref().is_none_or(|w| w.contains(&d.name)))
        .filter_map(|d| serde_json::to_value(d).ok())
        .collect();
    Ok(Json(json!({ "results": results })))
}

pub async fn property(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let kind = properties_kind(&granted, &object_type)?;
    let archived = Query::parse(raw.as_deref()).flag("archived");
    let world = shared.lock();
    world
        .store
        .property(kind, &name)
        .filter(|d| archived || !d.archived)
        .and_then(|d| serde_json::to_value(d).ok())
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                Some("OBJECT_NOT_FOUND"),
                format!("Unable to find property named: {name}"),
            )
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewProperty {
    name: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    field_type: String,
    group_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    has_unique_value: bool,
    #[serde(default)]
    options: Vec<PropertyOption>,
}

pub const PROPERTY_TYPES: &[&str] = &[
    "bool",
    "date",
    "datetime",
    "enumeration",
    "number",
    "phone_number",
    "string",
];

/// Creates a custom property: **201**; a name in use (archived ones too) is a 409.
pub async fn create_property(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = object_kind(&object_type)?;
    granted.require(&[kind.schema_write_scope()])?;
    let new: NewProperty = parse_json(&body)?;
    let valid_name = !new.name.is_empty()
        && new.name.starts_with(|c: char| c.is_ascii_lowercase())
        && new
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(ApiError::validation(format!(
            "Property name {:?} must start with a lowercase letter and hold only lowercase letters, digits and _",
            new.name
        )));
    }
    if !PROPERTY_TYPES.contains(&new.kind.as_str()) {
        return Err(ApiError::validation(format!(
            "type must be one of {PROPERTY_TYPES:?}"
        )));
    }
    let mut world = shared.lock();
    if world.store.property(kind, &new.name).is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Some("OBJECT_ALREADY_EXISTS"),
            format!("Property named '{}' already exists.", new.name),
        ));
    }
    let now = iso(world.store.tick());
    let def = PropertyDef {
        name: new.name,
        label: new.label,
        kind: new.kind,
        field_type: new.field_type,
        group_name: new.group_name,
        description: new.description,
        options: new.options,
        display_order: -1,
        calculated: false,
        external_options: false,
        has_unique_value: new.has_unique_value,
        hidden: false,
        hubspot_defined: false,
        form_field: false,
        archived: false,
        archived_at: None,
        modification_metadata: ModificationMetadata {
            archivable: true,
            read_only_definition: false,
            read_only_value: false,
        },
        created_at: now.clone(),
        updated_at: now,
    };
    let rendered = serde_json::to_value(&def).unwrap_or(Value::Null);
    world.store.properties.entry(kind).or_default().push(def);
    Ok((StatusCode::CREATED, Json(rendered)).into_response())
}

const OWNERS_SCOPE: &[&str] = &["crm.objects.owners.read"];

pub async fn owners(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    granted.require(OWNERS_SCOPE)?;
    let q = Query::parse(raw.as_deref());
    let limit = q.limit(100, 500)?;
    let archived = q.flag("archived");
    let after: u64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let email = q.get("email").map(str::to_lowercase);
    let world = shared.lock();
    let mut matching = world
        .store
        .owners
        .iter()
        .filter(|o| o.archived == archived)
        .filter(|o| email.as_ref().is_none_or(|e| o.email.to_lowercase() == *e))
        .filter(|o| o.id.parse::<u64>().is_ok_and(|id| id >= after));
    let results: Vec<Value> = matching
        .by_ref()
        .take(limit)
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    let mut body = json!({ "results": results });
    if let Some(next) = matching.next() {
        body["paging"] = json!({ "next": { "after": next.id } });
    }
    Ok(Json(body))
}

pub async fn owner(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(owner_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    granted.require(OWNERS_SCOPE)?;
    let by_user = Query::parse(raw.as_deref()).get("idProperty") == Some("userId");
    let world = shared.lock();
    world
        .store
        .owners
        .iter()
        .find(|o| {
            if by_user {
                o.user_id.to_string() == owner_id
            } else {
                o.id == owner_id
            }
        })
        .and_then(|o| serde_json::to_value(o).ok())
        .map(Json)
        .ok_or_else(ApiError::resource_not_found)
}

const PIPELINE_SCOPES: &[&str] = &[
    "crm.objects.deals.read",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
];

/// Deal pipelines (companies and contacts have none in a default portal).
fn pipelines_for(object_type: &str) -> Result<Vec<Value>, ApiError> {
    let at = "2024-01-01T00:00:00.000Z";
    let stage = |id: &str, label: &str, order: u32, probability: &str, closed: bool| {
        json!({"id": id, "label": label, "displayOrder": order, "archived": false, "createdAt": at, "updatedAt": at,
               "metadata": {"isClosed": closed.to_string(), "probability": probability}, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"})
    };
    match object_type {
        "deals" | "deal" | "0-3" => Ok(vec![
            json!({"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "archived": false,
                   "createdAt": at, "updatedAt": at, "stages": [
                stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2", false),
                stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4", false),
                stage("contractsent", "Contract Sent", 2, "0.8", false),
                stage("closedwon", "Closed Won", 3, "1.0", true),
                stage("closedlost", "Closed Lost", 4, "0.0", true),
            ]}),
            json!({"id": "7654321", "label": "Enterprise Renewals", "displayOrder": 1, "archived": false,
                   "createdAt": at, "updatedAt": at, "stages": [
                stage("7654322", "Renewal Due", 0, "0.5", false),
                stage("7654323", "Renewed", 1, "1.0", true),
                stage("7654324", "Churned", 2, "0.0", true),
            ]}),
        ]),
        "companies" | "contacts" | "0-1" | "0-2" => Ok(Vec::new()),
        other => Err(ApiError::validation(format!(
            "Unable to infer object type from: {other}"
        ))),
    }
}

pub async fn pipelines(
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    granted.require(PIPELINE_SCOPES)?;
    Ok(Json(json!({ "results": pipelines_for(&object_type)? })))
}

pub async fn pipeline(
    Extension(granted): Extension<Granted>,
    Path((object_type, pipeline_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    granted.require(PIPELINE_SCOPES)?;
    pipelines_for(&object_type)?
        .into_iter()
        .find(|p| p["id"] == pipeline_id.as_str())
        .map(Json)
        .ok_or_else(ApiError::resource_not_found)
}

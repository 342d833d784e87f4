//! Writes to `/crm/v3/objects/{companies|contacts}`: create, update, archive and their
//! batch forms, with HubSpot's status codes (an unexpected 2xx makes the official client
//! return `None`), property validation, one contact per email, and the write scopes.
//! A write made with an app's token reaches the webhooks as `changeSource` `INTEGRATION`
//! with the app's id as `sourceId`, which is how a writer knows its own echo.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::association_writes::{AssociationSpec, wants_primary};
use super::crm::{
    BATCH_MAX, batch_answer, find, id_text, missing_objects, object_kind, parse_json, store_error,
};
use super::query::Query;
use super::validate::{Invalid, invalid_properties, validation_error};
use super::{AppState, Granted};
use crate::clock::{iso, now_ms};
use crate::error::ApiError;
use crate::model::ObjectKind;
use crate::store::{Props, Store, StoreError};
use crate::world::World;

/// The change source of every write through the API (the sandbox's tokens are all an
/// app's).
pub const API_SOURCE: &str = "INTEGRATION";

/// The object kind plus a check that the token may write it.
fn writable(granted: &Granted, segment: &str) -> Result<ObjectKind, ApiError> {
    let kind = object_kind(segment)?;
    granted.require(&[kind.write_scope()])?;
    Ok(kind)
}

/// Property values as HubSpot takes them: strings, or numbers and booleans written as text.
fn as_props(properties: Map<String, Value>) -> Props {
    properties
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (name, text)
        })
        .collect()
}

#[derive(Deserialize)]
struct InlineAssociation {
    to: BatchId,
    types: Vec<AssociationSpec>,
}

#[derive(Deserialize)]
struct BatchId {
    id: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    associations: Vec<InlineAssociation>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    id: Value,
    #[serde(default)]
    id_property: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Deserialize)]
struct Batch<T> {
    inputs: Vec<T>,
}

/// A batch request's object kind (the token may write it) and its inputs (at most 100).
fn batch_request<T: for<'de> Deserialize<'de>>(
    granted: &Granted,
    object_type: &str,
    body: &Bytes,
) -> Result<(ObjectKind, Batch<T>), ApiError> {
    let kind = writable(granted, object_type)?;
    let batch: Batch<T> = parse_json(body)?;
    if batch.inputs.len() > BATCH_MAX {
        return Err(ApiError::validation(format!(
            "Batch input limit exceeded: {} inputs given, at most {BATCH_MAX} are allowed.",
            batch.inputs.len()
        ))
        .with("context", json!({ "maxInputs": [BATCH_MAX.to_string()] })));
    }
    Ok((kind, batch))
}

/// The other end of an inline association, and whether it makes the company primary.
fn inline_association(
    kind: ObjectKind,
    association: &InlineAssociation,
) -> Result<(u64, bool), ApiError> {
    let other: u64 = id_text(&association.to.id)
        .parse()
        .map_err(|_| ApiError::validation("association target ids must be numeric"))?;
    Ok((other, wants_primary(kind, &association.types)?))
}

/// A contact other than `except` that already holds `email` (HubSpot compares it without case).
fn contact_with_email(store: &Store, email: &str, except: Option<u64>) -> Option<u64> {
    store
        .records(ObjectKind::Contacts)
        .values()
        .filter(|r| !r.is_archived() && Some(r.id) != except)
        .find(|r| {
            r.props
                .get("email")
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .map(|r| r.id)
}

fn contact_exists(existing: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        Some("CONFLICT"),
        format!("Contact already exists. Existing ID: {existing}"),
    )
}

/// Whether `props` can be written to a `kind` record (`id`, when it exists already).
fn check(world: &World, kind: ObjectKind, props: &Props, id: Option<u64>) -> Result<(), ApiError> {
    let invalid: Vec<Invalid> = invalid_properties(&world.store, kind, props);
    if !invalid.is_empty() {
        return Err(validation_error(&invalid, world.config.app.portal_id));
    }
    let email = props.get("email").filter(|e| !e.is_empty());
    if kind == ObjectKind::Contacts
        && let Some(existing) = email.and_then(|e| contact_with_email(&world.store, e, id))
    {
        return Err(contact_exists(existing));
    }
    Ok(())
}

/// A create that passed every check: its properties and the records to associate.
struct PlannedCreate {
    props: Props,
    targets: Vec<(u64, bool)>,
}

/// Checks a create as applying it would, without writing: what a batch without trace ids
/// runs on every input before it writes any.
fn plan_create(
    world: &World,
    kind: ObjectKind,
    input: &CreateInput,
) -> Result<PlannedCreate, ApiError> {
    let props = as_props(input.properties.clone());
    check(world, kind, &props, None)?;
    let targets = input
        .associations
        .iter()
        .map(|a| inline_association(kind, a))
        .collect::<Result<Vec<_>, _>>()?;
    for (other, _) in &targets {
        let live = world
            .store
            .records(kind.other())
            .get(other)
            .is_some_and(|r| !r.is_archived());
        if !live {
            return Err(ApiError::validation(format!(
                "{} {other} does not exist: it cannot be associated",
                kind.other().singular()
            )));
        }
    }
    Ok(PlannedCreate { props, targets })
}

fn create_one(world: &mut World, kind: ObjectKind, input: CreateInput) -> Result<Value, ApiError> {
    let PlannedCreate { props, targets } = plan_create(world, kind, &input)?;
    let names: Vec<String> = props.keys().cloned().collect();
    let id = world
        .store
        .create(kind, props, API_SOURCE)
        .map_err(store_error)?;
    for (other, primary) in targets {
        let (company, contact) = match kind {
            ObjectKind::Companies => (id, other),
            ObjectKind::Contacts => (other, id),
        };
        world
            .store
            .associate(company, contact, primary, API_SOURCE)
            .map_err(store_error)?;
    }
    rendered(&world.store, kind, id, &names)
}

fn rendered(store: &Store, kind: ObjectKind, id: u64, names: &[String]) -> Result<Value, ApiError> {
    store
        .records(kind)
        .get(&id)
        .map(|r| store.render(kind, r, Some(names)))
        .ok_or_else(ApiError::resource_not_found)
}

/// Runs `apply` on the world and publishes the webhook events it caused.
pub fn writing<T>(shared: &AppState, apply: impl FnOnce(&mut World) -> T) -> T {
    let out = {
        let mut world = shared.lock();
        let out = apply(&mut world);
        world.publish_events();
        out
    };
    shared.wake.notify_one();
    out
}

pub async fn create(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = writable(&granted, &object_type)?;
    let input: CreateInput = parse_json(&body)?;
    let created = writing(&shared, |world| create_one(world, kind, input))?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The live record a single update or upsert names: by id, or by `email` for contacts.
fn target(
    store: &Store,
    kind: ObjectKind,
    id: &str,
    id_property: Option<&str>,
) -> Result<Option<u64>, ApiError> {
    match id_property {
        None | Some("hs_object_id") => {}
        Some("email") if kind == ObjectKind::Contacts => {}
        Some(other) if is_unique_key(store, kind, other) => {}
        Some(other) => {
            return Err(ApiError::validation(format!(
                "{other} is not a unique property of {}",
                kind.plural()
            )));
        }
    }
    Ok(find(store, kind, id, id_property)
        .filter(|r| !r.is_archived())
        .map(|r| r.id))
}

fn update_one(
    world: &mut World,
    kind: ObjectKind,
    id: u64,
    properties: Map<String, Value>,
) -> Result<Value, ApiError> {
    let props = as_props(properties);
    check(world, kind, &props, Some(id))?;
    let names: Vec<String> = props.keys().cloned().collect();
    world
        .store
        .update(kind, id, props, API_SOURCE)
        .map_err(store_error)?;
    rendered(&world.store, kind, id, &names)
}

#[derive(Deserialize)]
struct PropertiesOnly {
    #[serde(default)]
    properties: Map<String, Value>,
}

pub async fn update(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let kind = writable(&granted, &object_type)?;
    let q = Query::parse(raw.as_deref());
    let input: PropertiesOnly = parse_json(&body)?;
    writing(&shared, |world| {
        let found = target(&world.store, kind, &id, q.get("idProperty"))?
            .ok_or_else(ApiError::resource_not_found)?;
        update_one(world, kind, found, input.properties).map(Json)
    })
}

/// HubSpot answers 204 whether or not the record existed.
pub async fn archive(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let kind = writable(&granted, &object_type)?;
    writing(&shared, |world| archive_one(&mut world.store, kind, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

fn archive_one(store: &mut Store, kind: ObjectKind, id: &str) -> Result<(), ApiError> {
    let Ok(numeric) = id.parse::<u64>() else {
        return Ok(());
    };
    let resolved = store.resolve(kind, numeric);
    match store.archive(kind, resolved, API_SOURCE) {
        Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(other) => Err(store_error(other)),
    }
}

/// One input's failure as a 207 entry, tied to its trace id.
fn batch_error(error: ApiError, trace_id: &str) -> Value {
    json!({
        "status": "error",
        "category": error.body["category"],
        "message": error.body["message"],
        "context": { "objectWriteTraceId": [trace_id] },
    })
}

/// Runs every input; an input's failure fails the whole request unless every input has a
/// trace id, in which case it becomes that input's 207 entry and the rest still apply.
/// Without trace ids nothing is applied when one input would fail: each is checked
/// first.
fn run_batch<T>(
    world: &mut World,
    inputs: Vec<T>,
    trace_id: impl Fn(&T) -> Option<String>,
    checked: impl Fn(&World, &T) -> Result<(), ApiError>,
    apply: impl Fn(&mut World, T) -> Result<Value, ApiError>,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let traced = !inputs.is_empty() && inputs.iter().all(|i| trace_id(i).is_some());
    if !traced {
        for input in &inputs {
            checked(world, input)?;
        }
    }
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        let trace = trace_id(&input);
        match apply(world, input) {
            Ok(result) => results.push(result),
            Err(error) => match trace.filter(|_| traced) {
                Some(trace) => errors.push(batch_error(error, &trace)),
                None => return Err(error),
            },
        }
    }
    Ok((results, errors))
}

/// Two inputs of one batch with the same email: HubSpot refuses the whole request.
fn repeated_email<'a>(emails: impl Iterator<Item = &'a Value>) -> Option<ApiError> {
    let mut seen = BTreeMap::new();
    for email in emails.filter_map(Value::as_str).filter(|e| !e.is_empty()) {
        if seen.insert(email.to_ascii_lowercase(), ()).is_some() {
            return Some(ApiError::new(
                StatusCode::CONFLICT,
                Some("CONFLICT"),
                format!("Duplicate email in the batch: {email}"),
            ));
        }
    }
    None
}

pub async fn batch_create(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (kind, batch) = batch_request::<CreateInput>(&granted, &object_type, &body)?;
    if kind == ObjectKind::Contacts
        && let Some(refused) = repeated_email(
            batch
                .inputs
                .iter()
                .filter_map(|i| i.properties.get("email")),
        )
    {
        return Err(refused);
    }
    let started = iso(now_ms());
    let (results, errors) = writing(&shared, |world| {
        run_batch(
            world,
            batch.inputs,
            |i| i.object_write_trace_id.clone(),
            |world, i| plan_create(world, kind, i).map(|_| ()),
            |world, i| create_one(world, kind, i),
        )
    })?;
    Ok(batch_answer(StatusCode::CREATED, started, results, errors))
}

pub async fn batch_update(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (kind, batch) = batch_request::<UpdateInput>(&granted, &object_type, &body)?;
    // Only a custom unique property may name the record here; email may not (HubSpot's rule).
    check_keys(
        &shared.lock(),
        kind,
        batch.inputs.iter().filter_map(|i| i.id_property.as_deref()),
        false,
    )?;
    let started = iso(now_ms());
    let located = |world: &World, i: &UpdateInput| {
        let id = id_text(&i.id);
        target(&world.store, kind, &id, i.id_property.as_deref())?
            .ok_or_else(|| not_found(kind, &id))
    };
    let (results, errors) = writing(&shared, |world| {
        run_batch(
            world,
            batch.inputs,
            |i| i.object_write_trace_id.clone(),
            |world, i| {
                let id = located(world, i)?;
                check(world, kind, &as_props(i.properties.clone()), Some(id))
            },
            |world, i| {
                let id = located(world, &i)?;
                update_one(world, kind, id, i.properties)
            },
        )
    })?;
    Ok(batch_answer(StatusCode::OK, started, results, errors))
}

/// A property whose values HubSpot keeps unique, other than the record id itself.
fn is_unique_key(store: &Store, kind: ObjectKind, property: &str) -> bool {
    property != "hs_object_id"
        && store
            .property(kind, property)
            .is_some_and(|d| d.has_unique_value && !d.archived)
}

/// The 400 for a batch naming records by a property that is not unique (`email` is
/// allowed for contacts where `email_allowed`: upserts).
fn check_keys<'a>(
    world: &World,
    kind: ObjectKind,
    properties: impl Iterator<Item = &'a str>,
    email_allowed: bool,
) -> Result<(), ApiError> {
    for property in properties {
        let by_email = email_allowed && kind == ObjectKind::Contacts && property == "email";
        if !by_email && !is_unique_key(&world.store, kind, property) {
            return Err(ApiError::validation(format!(
                "Unable to perform update/upsert by non-unique {} property {property} in portal ID {}",
                kind.type_id(),
                world.config.app.portal_id
            )));
        }
    }
    Ok(())
}

fn not_found(kind: ObjectKind, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Some("OBJECT_NOT_FOUND"),
        missing_objects(kind),
    )
    .with("context", json!({ "ids": [id] }))
}

/// Creates or updates by a unique property (`email` for contacts): each result says
/// whether it was `new`.
pub async fn batch_upsert(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (kind, batch) = batch_request::<UpdateInput>(&granted, &object_type, &body)?;
    check_keys(
        &shared.lock(),
        kind,
        batch
            .inputs
            .iter()
            .map(|i| i.id_property.as_deref().unwrap_or("hs_object_id")),
        true,
    )?;
    let started = iso(now_ms());
    // The record the key names, if any, and the properties written: the key goes onto a
    // record the upsert creates.
    let planned =
        |world: &World, i: &UpdateInput| -> Result<(Option<u64>, Map<String, Value>), ApiError> {
            let key = id_text(&i.id);
            let property = i.id_property.clone().unwrap_or_default();
            let existing = target(&world.store, kind, &key, Some(&property))?;
            let mut properties = i.properties.clone();
            if existing.is_none() {
                properties.insert(property, Value::String(key));
            }
            Ok((existing, properties))
        };
    let (results, errors) = writing(&shared, |world| {
        run_batch(
            world,
            batch.inputs,
            |i| i.object_write_trace_id.clone(),
            |world, i| {
                let (existing, properties) = planned(world, i)?;
                check(world, kind, &as_props(properties), existing)
            },
            |world, i| {
                let (existing, properties) = planned(world, &i)?;
                let mut result = match existing {
                    Some(id) => {
                        // The answer names the record by its key too.
                        let mut names: Vec<String> = properties.keys().cloned().collect();
                        names.extend(i.id_property.clone());
                        update_one(world, kind, id, properties)?;
                        rendered(&world.store, kind, id, &names)?
                    }
                    None => create_one(
                        world,
                        kind,
                        CreateInput {
                            properties,
                            associations: Vec::new(),
                            object_write_trace_id: None,
                        },
                    )?,
                };
                result["new"] = json!(existing.is_none());
                Ok(result)
            },
        )
    })?;
    Ok(batch_answer(StatusCode::OK, started, results, errors))
}

pub async fn batch_archive(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (kind, batch) = batch_request::<BatchId>(&granted, &object_type, &body)?;
    writing(&shared, |world| {
        batch
            .inputs
            .iter()
            .try_for_each(|i| archive_one(&mut world.store, kind, &id_text(&i.id)))
    })?;
    Ok(StatusCode::NO_CONTENT)
}

//! Lists v3 writes: create a list, and add or remove members of a MANUAL or SNAPSHOT list.
//! HubSpot re-evaluates DYNAMIC lists itself, so their memberships cannot be written. Writes
//! need `crm.lists.write` and `crm.lists.read` both; list changes send no webhook.

use axum::Json;
use axum::extract::{Extension, Path, State};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crm::{id_text, parse_json};
use super::lists::{LISTS_SCOPE, find, render_list};
use super::{AppState, Granted};
use crate::error::ApiError;
use crate::model::ObjectKind;
use crate::store::Store;

const LISTS_WRITE_SCOPE: &[&str] = &["crm.lists.write"];
const PROCESSING_TYPES: &[&str] = &["MANUAL", "SNAPSHOT", "DYNAMIC"];

fn require_write(granted: &Granted) -> Result<(), ApiError> {
    granted.require(LISTS_WRITE_SCOPE)?;
    granted.require(LISTS_SCOPE)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    name: String,
    object_type_id: String,
    processing_type: String,
}

/// HubSpot answers a created list with 200, not 201.
pub async fn create(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_write(&granted)?;
    let request: CreateRequest = parse_json(&body)?;
    let object = ObjectKind::parse(&request.object_type_id).ok_or_else(|| {
        ApiError::validation(format!("Unknown object type id {}", request.object_type_id))
    })?;
    if !PROCESSING_TYPES.contains(&request.processing_type.as_str()) {
        return Err(ApiError::validation(format!(
            "processingType must be one of {PROCESSING_TYPES:?}"
        )));
    }
    let name = request.name.trim();
    if name.is_empty() {
        return Err(ApiError::validation("A list needs a name"));
    }
    let mut world = shared.lock();
    if world
        .store
        .lists
        .values()
        .any(|l| l.name.eq_ignore_ascii_case(name))
    {
        return Err(ApiError::validation(format!(
            "A list named {name} already exists"
        )));
    }
    let id = world
        .store
        .create_list(name.to_owned(), object, request.processing_type);
    let list = find(&world.store, &id.to_string())?;
    Ok(Json(json!({ "list": render_list(&world.store, list) })))
}

/// What one membership write did, in HubSpot's keys (`recordsIdsAdded` is spelt so).
#[derive(Default)]
struct MembershipChange {
    added: Vec<String>,
    removed: Vec<String>,
    missing: Vec<String>,
}

impl MembershipChange {
    fn body(self) -> Value {
        json!({
            "recordsIdsAdded": self.added,
            "recordIdsRemoved": self.removed,
            "recordIdsMissing": self.missing,
        })
    }
}

/// The list, if its memberships may be written.
fn writable_list(store: &Store, list_id: &str) -> Result<(u64, ObjectKind), ApiError> {
    let list = find(store, list_id)?;
    if list.processing_type == "DYNAMIC" {
        return Err(ApiError::validation(format!(
            "List {list_id} is a DYNAMIC list: HubSpot keeps its members from its filters, so \
             only MANUAL and SNAPSHOT lists can have members added or removed"
        ))
        .with(
            "subCategory",
            json!("ListError.MEMBERSHIP_UPDATE_NOT_ALLOWED_FOR_PROCESSING_TYPE"),
        ));
    }
    Ok((list.id, list.object))
}

/// Applies `member` for each id: ids naming no live record are reported missing, and ids
/// already in (or already out of) the list appear in no array.
fn apply(
    store: &mut Store,
    list_id: u64,
    object: ObjectKind,
    ids: &[Value],
    member: bool,
    change: &mut MembershipChange,
) {
    for raw in ids.iter().map(id_text) {
        let live = raw
            .parse::<u64>()
            .ok()
            .map(|id| store.resolve(object, id))
            .filter(|id| {
                store
                    .records(object)
                    .get(id)
                    .is_some_and(|r| !r.is_archived())
            });
        let Some(id) = live else {
            change.missing.push(raw);
            continue;
        };
        match store.set_list_membership(list_id, id, member) {
            Ok(true) if member => change.added.push(raw),
            Ok(true) => change.removed.push(raw),
            Ok(false) => {}
            Err(_) => change.missing.push(raw),
        }
    }
}

fn write_memberships(
    shared: &AppState,
    list_id: &str,
    to_add: &[Value],
    to_remove: &[Value],
) -> Result<Json<Value>, ApiError> {
    let mut world = shared.lock();
    let (id, object) = writable_list(&world.store, list_id)?;
    let mut change = MembershipChange::default();
    apply(&mut world.store, id, object, to_add, true, &mut change);
    apply(&mut world.store, id, object, to_remove, false, &mut change);
    Ok(Json(change.body()))
}

/// A bare array of record ids, once the token may write lists.
fn record_ids(granted: &Granted, body: &Bytes) -> Result<Vec<Value>, ApiError> {
    require_write(granted)?;
    parse_json(body)
}

pub async fn add(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(list_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let ids = record_ids(&granted, &body)?;
    write_memberships(&shared, &list_id, &ids, &[])
}

pub async fn remove(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(list_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let ids = record_ids(&granted, &body)?;
    write_memberships(&shared, &list_id, &[], &ids)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddAndRemove {
    record_ids_to_add: Vec<Value>,
    record_ids_to_remove: Vec<Value>,
}

pub async fn add_and_remove(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(list_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_write(&granted)?;
    let request: AddAndRemove = parse_json(&body)?;
    write_memberships(
        &shared,
        &list_id,
        &request.record_ids_to_add,
        &request.record_ids_to_remove,
    )
}

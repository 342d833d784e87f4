//! Company <-> contact associations: v3 per record, v4 per record and v4 batch read.

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crm::{batch_answer, parse_json, readable};
use super::query::Query;
use super::{AppState, Granted};
use crate::clock::{iso, now_ms};
use crate::error::ApiError;
use crate::model::ObjectKind;
use crate::store::Store;

pub const V4_BATCH_MAX: usize = 1_000;
const V4_PAGE_DEFAULT: usize = 500;

/// HubSpot-defined type ids: (unlabeled, primary) for each direction.
pub fn type_ids(from: ObjectKind) -> (u32, u32) {
    match from {
        ObjectKind::Contacts => (279, 1),
        ObjectKind::Companies => (280, 2),
    }
}

pub fn pair(from: ObjectKind, to_segment: &str) -> Result<ObjectKind, ApiError> {
    ObjectKind::parse(to_segment)
        .filter(|to| *to != from)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "No association type between {} and {to_segment}",
                from.plural()
            ))
        })
}

fn is_primary(store: &Store, from: ObjectKind, from_id: u64, to_id: u64) -> bool {
    match from {
        ObjectKind::Companies => store.is_primary(from_id, to_id),
        ObjectKind::Contacts => store.is_primary(to_id, from_id),
    }
}

fn v4_row(store: &Store, from: ObjectKind, from_id: u64, to_id: u64) -> Value {
    let (unlabeled, primary) = type_ids(from);
    let mut types = vec![json!({"category": "HUBSPOT_DEFINED", "typeId": unlabeled})];
    if is_primary(store, from, from_id, to_id) {
        types.push(json!({"category": "HUBSPOT_DEFINED", "typeId": primary, "label": "Primary"}));
    }
    json!({ "toObjectId": to_id.to_string(), "associationTypes": types })
}

pub fn live_id(store: &Store, kind: ObjectKind, raw: &str) -> Option<u64> {
    let id = store.resolve(kind, raw.parse().ok()?);
    store
        .records(kind)
        .get(&id)
        .filter(|r| !r.is_archived())
        .map(|r| r.id)
}

/// One page of associated ids, `after` being the first id to include.
fn page(
    ids: &[u64],
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<u64>, Option<u64>), ApiError> {
    let start = match after.filter(|a| !a.is_empty()) {
        None => 0,
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| ApiError::validation(format!("invalid after cursor {a}")))?,
    };
    let mut rest = ids.iter().copied().filter(|id| *id >= start);
    let chunk: Vec<u64> = rest.by_ref().take(limit).collect();
    Ok((chunk, rest.next()))
}

pub async fn v4_list(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type, id, to_type)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let from = readable(&granted, &object_type)?;
    let to = pair(from, &to_type)?;
    let q = Query::parse(raw.as_deref());
    let limit = q.limit(V4_PAGE_DEFAULT, V4_PAGE_DEFAULT)?;
    let world = shared.lock();
    let store = &world.store;
    let from_id = live_id(store, from, &id).ok_or_else(ApiError::resource_not_found)?;
    let ids = store.associated(from, from_id);
    let (chunk, next) = page(&ids, q.get("after"), limit)?;
    let mut body = json!({ "results": chunk.iter().map(|t| v4_row(store, from, from_id, *t)).collect::<Vec<_>>() });
    if let Some(next) = next {
        body["paging"] = json!({ "next": { "after": next.to_string(), "link": format!(
            "/crm/v4/objects/{}/{from_id}/associations/{}?after={next}&limit={limit}", from.plural(), to.plural()
        ) } });
    }
    Ok(Json(body))
}

pub async fn v3_list(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type, id, to_type)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let from = readable(&granted, &object_type)?;
    pair(from, &to_type)?;
    let q = Query::parse(raw.as_deref());
    let limit = q.limit(V4_PAGE_DEFAULT, V4_PAGE_DEFAULT)?;
    let world = shared.lock();
    let store = &world.store;
    let from_id = live_id(store, from, &id).ok_or_else(ApiError::resource_not_found)?;
    let ids = store.associated(from, from_id);
    let (chunk, next) = page(&ids, q.get("after"), limit)?;
    let label = match from {
        ObjectKind::Companies => "company_to_contact",
        ObjectKind::Contacts => "contact_to_company",
    };
    let rows: Vec<Value> = chunk
        .iter()
        .map(|t| json!({"id": t.to_string(), "type": label}))
        .collect();
    let mut body = json!({ "results": rows });
    if let Some(next) = next {
        body["paging"] = json!({ "next": { "after": next.to_string() } });
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
struct BatchInput {
    id: Value,
    #[serde(default)]
    after: Option<String>,
}

#[derive(Deserialize)]
struct BatchRequest {
    inputs: Vec<BatchInput>,
}

pub async fn v4_batch_read(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((from_type, to_type)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let from = readable(&granted, &from_type)?;
    let to = pair(from, &to_type)?;
    let request: BatchRequest = parse_json(&body)?;
    if request.inputs.len() > V4_BATCH_MAX {
        return Err(ApiError::validation(format!(
            "Batch input limit exceeded: {} inputs given, at most {V4_BATCH_MAX} are allowed.",
            request.inputs.len()
        )));
    }
    let started = iso(now_ms());
    let world = shared.lock();
    let store = &world.store;
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &request.inputs {
        let raw = match &input.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let ids = live_id(store, from, &raw).map(|id| (id, store.associated(from, id)));
        match ids {
            Some((from_id, ids)) if !ids.is_empty() => {
                let (chunk, next) = page(&ids, input.after.as_deref(), V4_PAGE_DEFAULT)?;
                let mut row = json!({
                    "from": { "id": raw },
                    "to": chunk.iter().map(|t| v4_row(store, from, from_id, *t)).collect::<Vec<_>>(),
                });
                if let Some(next) = next {
                    row["paging"] = json!({ "next": { "after": next.to_string() } });
                }
                results.push(row);
            }
            _ => errors.push(json!({
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                "message": format!("No {} is associated with {} {raw}.", to.plural(), from.singular()),
                "context": { "fromObjectId": [raw] },
            })),
        }
    }
    Ok(batch_answer(StatusCode::OK, started, results, errors))
}

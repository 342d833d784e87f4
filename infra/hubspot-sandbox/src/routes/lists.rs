//! Lists v3 (ILS): get, batch get, search, by name, memberships and record memberships.

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::crm::parse_json;
use super::query::Query;
use super::{AppState, Granted};
use crate::clock::iso;
use crate::error::ApiError;
use crate::model::{CrmList, ObjectKind};
use crate::store::Store;

pub const LISTS_SCOPE: &[&str] = &["crm.lists.read"];
pub const MEMBERSHIPS_MAX: usize = 250;
const MEMBERSHIPS_DEFAULT: usize = 100;
const CREATED_BY: &str = "2000001";

/// Members that still exist (archived records leave their lists while in the recycle bin).
fn live_members(store: &Store, list: &CrmList) -> Vec<(u64, i64)> {
    list.members
        .iter()
        .filter(|(id, _)| {
            store
                .records(list.object)
                .get(id)
                .is_some_and(|r| !r.is_archived())
        })
        .map(|(id, at)| (*id, *at))
        .collect()
}

pub fn render_list(store: &Store, list: &CrmList) -> Value {
    json!({
        "listId": list.id.to_string(),
        "listVersion": list.version,
        "name": list.name,
        "objectTypeId": list.object.type_id(),
        "processingType": list.processing_type,
        "processingStatus": "COMPLETE",
        "createdAt": iso(list.created_ms),
        "updatedAt": iso(list.updated_ms),
        "filtersUpdatedAt": iso(list.created_ms),
        "createdById": CREATED_BY,
        "updatedById": CREATED_BY,
        "size": live_members(store, list).len(),
    })
}

fn render_search_result(store: &Store, list: &CrmList) -> Value {
    let members = live_members(store, list);
    let mut out = render_list(store, list);
    if let Some(obj) = out.as_object_mut() {
        obj.remove("size");
    }
    out["additionalProperties"] = json!({
        "hs_list_size": members.len().to_string(),
        "hs_last_record_added_at": members.iter().map(|(_, at)| *at).max().unwrap_or(list.created_ms).to_string(),
        "hs_folder_name": "",
        "hs_list_reference_count": "0",
    });
    out
}

fn list_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Some("OBJECT_NOT_FOUND"),
        format!("List does not exist with ID {id}."),
    )
}

pub fn find<'a>(store: &'a Store, id: &str) -> Result<&'a CrmList, ApiError> {
    id.parse::<u64>()
        .ok()
        .and_then(|n| store.lists.get(&n))
        .ok_or_else(|| list_not_found(id))
}

pub async fn get_one(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(list_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    granted.require(LISTS_SCOPE)?;
    let world = shared.lock();
    let list = find(&world.store, &list_id)?;
    Ok(Json(json!({ "list": render_list(&world.store, list) })))
}

pub async fn by_ids(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    granted.require(LISTS_SCOPE)?;
    let ids = Query::parse(raw.as_deref())
        .list("listIds")
        .unwrap_or_default();
    let world = shared.lock();
    let lists: Vec<Value> = ids
        .iter()
        .filter_map(|id| find(&world.store, id).ok())
        .map(|l| render_list(&world.store, l))
        .collect();
    Ok(Json(json!({ "lists": lists })))
}

pub async fn by_name(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type_id, list_name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    granted.require(LISTS_SCOPE)?;
    let world = shared.lock();
    let kind = ObjectKind::parse(&object_type_id);
    world
        .store
        .lists
        .values()
        .find(|l| Some(l.object) == kind && l.name.eq_ignore_ascii_case(&list_name))
        .map(|l| Json(json!({ "list": render_list(&world.store, l) })))
        .ok_or_else(|| list_not_found(&list_name))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct SearchRequest {
    query: Option<String>,
    processing_types: Option<Vec<String>>,
    object_type_id: Option<String>,
    count: Option<usize>,
    offset: Option<usize>,
    list_ids: Option<Vec<String>>,
}

pub async fn search(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    granted.require(LISTS_SCOPE)?;
    let request: SearchRequest = if body.is_empty() {
        SearchRequest::default()
    } else {
        parse_json(&body)?
    };
    let count = request.count.unwrap_or(20).clamp(1, 500);
    let offset = request.offset.unwrap_or(0);
    let query = request
        .query
        .as_deref()
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let world = shared.lock();
    let store = &world.store;
    let matching: Vec<&CrmList> = store
        .lists
        .values()
        .filter(|l| {
            query
                .as_ref()
                .is_none_or(|q| l.name.to_lowercase().contains(q.as_str()))
        })
        .filter(|l| {
            request
                .processing_types
                .as_ref()
                .is_none_or(|t| t.is_empty() || t.contains(&l.processing_type))
        })
        .filter(|l| {
            request
                .object_type_id
                .as_ref()
                .is_none_or(|t| l.object.type_id() == t)
        })
        .filter(|l| {
            request
                .list_ids
                .as_ref()
                .is_none_or(|ids| ids.is_empty() || ids.contains(&l.id.to_string()))
        })
        .collect();
    let total = matching.len();
    let lists: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(count)
        .map(|l| render_search_result(store, l))
        .collect();
    let next = offset + lists.len();
    Ok(Json(
        json!({ "lists": lists, "offset": next, "hasMore": next < total, "total": total }),
    ))
}

fn membership(id: u64, at: i64) -> Value {
    json!({ "recordId": id.to_string(), "membershipTimestamp": iso(at) })
}

pub async fn memberships(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(list_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    granted.require(LISTS_SCOPE)?;
    let q = Query::parse(raw.as_deref());
    let limit = q.limit(MEMBERSHIPS_DEFAULT, MEMBERSHIPS_MAX)?;
    let world = shared.lock();
    let list = find(&world.store, &list_id)?;
    let members = live_members(&world.store, list);
    let total = members.len();
    let cursor = |name: &str| -> Result<Option<u64>, ApiError> {
        q.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| ApiError::validation(format!("invalid {name} cursor {v}")))
            })
            .transpose()
    };
    let (after, before) = (cursor("after")?, cursor("before")?);
    let mut body = if let (None, Some(before)) = (after, before) {
        // only `before`: descending by record id
        let mut older = members.iter().rev().filter(|(id, _)| *id < before);
        let page: Vec<&(u64, i64)> = older.by_ref().take(limit).collect();
        let mut body = json!({ "results": page.iter().map(|(id, at)| membership(*id, *at)).collect::<Vec<_>>() });
        if older.next().is_some()
            && let Some((last, _)) = page.last()
        {
            body["paging"] = json!({ "prev": { "before": last.to_string() } });
        }
        body
    } else {
        let mut newer = members
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| *id > a));
        let page: Vec<&(u64, i64)> = newer.by_ref().take(limit).collect();
        let mut body = json!({ "results": page.iter().map(|(id, at)| membership(*id, *at)).collect::<Vec<_>>() });
        if newer.next().is_some()
            && let Some((last, _)) = page.last()
        {
            body["paging"] = json!({ "next": { "after": last.to_string() } });
        }
        body
    };
    body["total"] = json!(total);
    Ok(Json(body))
}

pub async fn memberships_join_order(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(list_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    granted.require(LISTS_SCOPE)?;
    let q = Query::parse(raw.as_deref());
    let limit = q.limit(MEMBERSHIPS_DEFAULT, MEMBERSHIPS_MAX)?;
    let offset: usize = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let world = shared.lock();
    let list = find(&world.store, &list_id)?;
    let mut members = live_members(&world.store, list);
    members.sort_by_key(|(id, at)| (*at, *id));
    let page: Vec<Value> = members
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, at)| membership(*id, *at))
        .collect();
    let mut body = json!({ "results": page, "total": members.len() });
    if offset + limit < members.len() {
        body["paging"] = json!({ "next": { "after": (offset + limit).to_string() } });
    }
    Ok(Json(body))
}

pub async fn record_memberships(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type_id, record_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    granted.require(LISTS_SCOPE)?;
    let kind = ObjectKind::parse(&object_type_id)
        .ok_or_else(|| ApiError::validation(format!("Unknown object type id {object_type_id}")))?;
    let world = shared.lock();
    let store = &world.store;
    let id = record_id
        .parse::<u64>()
        .map(|id| store.resolve(kind, id))
        .map_err(|_| ApiError::object_not_found(&record_id))?;
    let results: Vec<Value> = store
        .lists
        .values()
        .filter(|l| l.object == kind)
        .filter_map(|l| {
            let joined = l.members.get(&id)?;
            Some(json!({
                "listId": l.id.to_string(),
                "listVersion": l.version,
                "firstAddedTimestamp": iso(l.first_added.get(&id).copied().unwrap_or(*joined)),
                "lastAddedTimestamp": iso(*joined),
                "isPublicList": false,
            }))
        })
        .collect();
    let total = results.len();
    Ok(Json(json!({ "results": results, "total": total })))
}

//! `/crm/v3/objects/{companies|contacts}`: list, get one, batch read, merge (writes are
//! in `writes`).

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::query::Query;
use super::{AppState, Granted};
use crate::clock::{iso, now_ms};
use crate::error::ApiError;
use crate::model::{ObjectKind, Record};
use crate::store::{Store, StoreError};

pub const LIST_MAX: usize = 100;
pub const BATCH_MAX: usize = 100;

pub fn object_kind(segment: &str) -> Result<ObjectKind, ApiError> {
    ObjectKind::parse(segment)
        .ok_or_else(|| ApiError::validation(format!("Unable to infer object type from: {segment}")))
}

/// The object kind plus a check that the token may read it.
pub fn readable(granted: &Granted, segment: &str) -> Result<ObjectKind, ApiError> {
    let kind = object_kind(segment)?;
    granted.require(&[kind.read_scope()])?;
    Ok(kind)
}

pub fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::validation(format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// `http://host` of the request, for `paging.next.link`.
pub fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("api.hubapi.com");
    format!("http://{host}")
}

/// The inline `associations` block of list/get for the requested object types.
fn associations_block(
    store: &Store,
    kind: ObjectKind,
    record: &Record,
    wanted: &[String],
) -> Option<Value> {
    let mut block = Map::new();
    for name in wanted {
        let Some(other) = ObjectKind::parse(name).filter(|o| *o != kind) else {
            continue;
        };
        let mut rows = Vec::new();
        for id in store.associated(kind, record.id) {
            match kind {
                ObjectKind::Companies => {
                    rows.push(json!({"id": id.to_string(), "type": "company_to_contact"}));
                }
                ObjectKind::Contacts => {
                    if store.is_primary(id, record.id) {
                        rows.push(json!({"id": id.to_string(), "type": "contact_to_company"}));
                    }
                    rows.push(
                        json!({"id": id.to_string(), "type": "contact_to_company_unlabeled"}),
                    );
                }
            }
        }
        if !rows.is_empty() {
            block.insert(other.plural().to_owned(), json!({ "results": rows }));
        }
    }
    (!block.is_empty()).then_some(Value::Object(block))
}

fn render_full(store: &Store, kind: ObjectKind, record: &Record, q: &Query) -> Value {
    let props = q.list("properties");
    let mut out = store.render(kind, record, props.as_deref());
    if let Some(names) = q.list("propertiesWithHistory") {
        out["propertiesWithHistory"] = store.render_history(kind, record, &names);
    }
    if let Some(wanted) = q.list("associations")
        && let Some(block) = associations_block(store, kind, record, &wanted)
    {
        out["associations"] = block;
    }
    out
}

pub async fn list(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let kind = readable(&granted, &object_type)?;
    let q = Query::parse(raw.as_deref());
    let limit = q.limit(10, LIST_MAX)?;
    let after = match q.get("after") {
        None | Some("") => 0,
        Some(raw) => raw.parse::<u64>().map_err(|_| {
            ApiError::validation(format!("after must be a valid cursor, got {raw}"))
        })?,
    };
    let archived = q.flag("archived");
    let world = shared.lock();
    let store = &world.store;
    let mut page = store
        .records(kind)
        .range(after..)
        .map(|(_, r)| r)
        .filter(|r| r.is_archived() == archived);
    let results: Vec<Value> = page
        .by_ref()
        .take(limit)
        .map(|r| render_full(store, kind, r, &q))
        .collect();
    let mut body = json!({ "results": results });
    if let Some(next) = page.next() {
        let after = next.id.to_string();
        let link = format!(
            "{}/crm/v3/objects/{}?after={after}&limit={limit}",
            origin(&headers),
            kind.plural()
        );
        body["paging"] = json!({ "next": { "after": after, "link": link } });
    }
    Ok(Json(body))
}

/// Finds a record by id (following merges) or by a unique property (`idProperty`).
pub fn find<'a>(
    store: &'a Store,
    kind: ObjectKind,
    id: &str,
    id_property: Option<&str>,
) -> Option<&'a Record> {
    match id_property.filter(|p| *p != "hs_object_id") {
        Some(property) => store.records(kind).values().find(|r| {
            store
                .value(kind, r, property)
                .is_some_and(|v| v.eq_ignore_ascii_case(id))
        }),
        None => {
            let numeric: u64 = id.parse().ok()?;
            store.records(kind).get(&store.resolve(kind, numeric))
        }
    }
}

pub async fn get_one(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((object_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let kind = readable(&granted, &object_type)?;
    let q = Query::parse(raw.as_deref());
    let id_property = q.get("idProperty");
    if id_property.is_none() && id.parse::<u64>().is_err() {
        return Err(ApiError::object_not_found(&id));
    }
    let archived = q.flag("archived");
    let world = shared.lock();
    let record = find(&world.store, kind, &id, id_property)
        .filter(|r| archived || !r.is_archived())
        .ok_or_else(ApiError::resource_not_found)?;
    Ok(Json(render_full(&world.store, kind, record, &q)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInput {
    id: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchReadRequest {
    #[serde(default)]
    properties: Option<Vec<String>>,
    #[serde(default)]
    properties_with_history: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
    inputs: Vec<BatchInput>,
}

pub fn id_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn batch_read(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = readable(&granted, &object_type)?;
    let q = Query::parse(raw.as_deref());
    let request: BatchReadRequest = parse_json(&body)?;
    if request.inputs.len() > BATCH_MAX {
        return Err(ApiError::validation(format!(
            "Batch input limit exceeded: {} inputs given, at most {BATCH_MAX} are allowed.",
            request.inputs.len()
        ))
        .with("context", json!({ "maxInputs": [BATCH_MAX.to_string()] })));
    }
    let archived = q.flag("archived");
    let started = iso(now_ms());
    let world = shared.lock();
    let store = &world.store;
    let mut seen = std::collections::BTreeSet::new();
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in &request.inputs {
        let id = id_text(&input.id);
        match find(store, kind, &id, request.id_property.as_deref())
            .filter(|r| r.is_archived() == archived)
        {
            Some(record) => {
                if seen.insert(record.id) {
                    let mut out = store.render(kind, record, request.properties.as_deref());
                    if !request.properties_with_history.is_empty() {
                        out["propertiesWithHistory"] =
                            store.render_history(kind, record, &request.properties_with_history);
                    }
                    results.push(out);
                }
            }
            None => missing.push(id),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![json!({
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": missing_objects(kind),
            "context": { "ids": missing },
            "errors": [],
            "links": {},
        })]
    };
    Ok(batch_answer(StatusCode::OK, started, results, errors))
}

/// HubSpot's message for ids of a batch that name no record.
pub fn missing_objects(kind: ObjectKind) -> String {
    format!(
        "Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.",
        kind.singular().to_ascii_uppercase()
    )
}

/// A batch's answer: `ok` when every input went through, else 207 with the errors.
pub fn batch_answer(
    ok: StatusCode,
    started: String,
    results: Vec<Value>,
    errors: Vec<Value>,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": iso(now_ms()),
    });
    if errors.is_empty() {
        return (ok, Json(body)).into_response();
    }
    body["numErrors"] = json!(errors.len());
    body["errors"] = Value::Array(errors);
    (StatusCode::MULTI_STATUS, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeRequest {
    primary_object_id: Value,
    object_id_to_merge: Value,
}

pub fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(_) => ApiError::resource_not_found(),
        StoreError::Invalid(why) => ApiError::validation(why),
    }
}

pub async fn merge(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path(object_type): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let kind = object_kind(&object_type)?;
    granted.require(&[kind.write_scope()])?;
    let request: MergeRequest = parse_json(&body)?;
    let parse = |v: &Value| {
        id_text(v)
            .parse::<u64>()
            .map_err(|_| ApiError::validation("object ids must be numeric"))
    };
    let (primary, merged) = (
        parse(&request.primary_object_id)?,
        parse(&request.object_id_to_merge)?,
    );
    let rendered = {
        let mut world = shared.lock();
        let survivor = world
            .store
            .merge(kind, primary, merged, false, "API")
            .map_err(store_error)?;
        world.publish_events();
        let record = world.store.records(kind).get(&survivor).cloned();
        record.map(|r| world.store.render(kind, &r, None))
    };
    shared.wake.notify_one();
    rendered.map(Json).ok_or_else(ApiError::resource_not_found)
}

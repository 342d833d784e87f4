//! v4 association writes between companies and contacts: the default and labeled PUT, the
//! DELETE, and the batch associate, create and archive forms. HubSpot-defined types only:
//! unlabeled (279 contact to company, 280 back) and Primary (1 and 2). Each write emits the
//! `associationChange` webhooks the store records for it.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::associations::{live_id, pair, type_ids};
use super::crm::{batch_answer, id_text, object_kind, parse_json, store_error};
use super::writes::{API_SOURCE, writing};
use super::{AppState, Granted};
use crate::clock::{iso, now_ms};
use crate::error::ApiError;
use crate::model::ObjectKind;
use crate::store::Store;

/// Inputs HubSpot takes in one association batch create.
pub const V4_WRITE_MAX: usize = 2_000;

/// One association type as a write names it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociationSpec {
    #[serde(default)]
    pub association_category: Option<String>,
    pub association_type_id: u64,
}

/// HubSpot's 400 for an association type that does not exist between the two objects.
pub fn invalid_association(spec: &str) -> ApiError {
    ApiError::validation("One or more associations are invalid").with(
        "context",
        json!({
            "associationSpec": [spec],
            "INVALID_ASSOCIATION_TYPE_ID": [format!("{spec} is not a valid association definition id")],
        }),
    )
}

/// Whether `types`, written from a `from` record, ask for the Primary label; any type that is
/// not HubSpot's unlabeled or Primary one for the pair is refused.
pub fn wants_primary(from: ObjectKind, types: &[AssociationSpec]) -> Result<bool, ApiError> {
    let (unlabeled, primary) = type_ids(from);
    let mut wanted = false;
    for t in types {
        let category = t
            .association_category
            .as_deref()
            .unwrap_or("HUBSPOT_DEFINED");
        let id = t.association_type_id;
        match (category, u32::try_from(id)) {
            ("HUBSPOT_DEFINED", Ok(n)) if n == unlabeled => {}
            ("HUBSPOT_DEFINED", Ok(n)) if n == primary => wanted = true,
            _ => return Err(invalid_association(&format!("{category}={id}"))),
        }
    }
    Ok(wanted)
}

/// The object kinds of a write from `from_segment` to `to_segment`; the token must be
/// able to write the first.
fn writable_pair(
    granted: &Granted,
    from_segment: &str,
    to_segment: &str,
) -> Result<(ObjectKind, ObjectKind), ApiError> {
    let from = object_kind(from_segment)?;
    granted.require(&[from.write_scope()])?;
    Ok((from, pair(from, to_segment)?))
}

/// Both ends of a write as live record ids, ordered company first.
fn ends(
    store: &Store,
    from: ObjectKind,
    from_raw: &str,
    to_raw: &str,
) -> Result<(u64, u64), ApiError> {
    let live = |kind: ObjectKind, raw: &str| {
        live_id(store, kind, raw).ok_or_else(|| {
            ApiError::validation(format!(
                "{} {raw} does not exist: it cannot be associated",
                kind.singular()
            ))
        })
    };
    let from_id = live(from, from_raw)?;
    let to_id = live(from.other(), to_raw)?;
    Ok(match from {
        ObjectKind::Companies => (from_id, to_id),
        ObjectKind::Contacts => (to_id, from_id),
    })
}

/// Associates the pair; `primary` `None` keeps the Primary label as it is, `Some` sets it
/// exactly (the labeled write replaces the labels between the two).
fn associate(
    store: &mut Store,
    (company, contact): (u64, u64),
    primary: Option<bool>,
) -> Result<(), ApiError> {
    let make_primary = primary == Some(true);
    store
        .associate(company, contact, make_primary, API_SOURCE)
        .map_err(store_error)?;
    if primary == Some(false) {
        store.drop_primary(company, contact, API_SOURCE);
    }
    Ok(())
}

/// The default association in both directions, as HubSpot answers it.
fn default_rows(from: ObjectKind, from_id: &str, to_id: &str) -> [Value; 2] {
    let row = |kind: ObjectKind, a: &str, b: &str| {
        json!({
            "from": { "id": a },
            "to": { "id": b },
            "associationSpec": { "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_ids(kind).0 },
        })
    };
    [row(from, from_id, to_id), row(from.other(), to_id, from_id)]
}

fn labels_between(store: &Store, from: ObjectKind, (company, contact): (u64, u64)) -> Value {
    let (from_id, to_id) = match from {
        ObjectKind::Companies => (company, contact),
        ObjectKind::Contacts => (contact, company),
    };
    let labels: Vec<&str> = if store.is_primary(company, contact) {
        vec!["Primary"]
    } else {
        Vec::new()
    };
    json!({
        "fromObjectTypeId": from.type_id(),
        "fromObjectId": from_id,
        "toObjectTypeId": from.other().type_id(),
        "toObjectId": to_id,
        "labels": labels,
    })
}

pub async fn put_default(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let (from, _) = writable_pair(&granted, &from_type, &to_type)?;
    let started = iso(now_ms());
    writing(&shared, |world| {
        let pair = ends(&world.store, from, &from_id, &to_id)?;
        associate(&mut world.store, pair, None)
    })?;
    Ok(batch_answer(
        StatusCode::OK,
        started,
        default_rows(from, &from_id, &to_id).into(),
        Vec::new(),
    ))
}

pub async fn put_labeled(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (from, _) = writable_pair(&granted, &from_type, &to_type)?;
    let types: Vec<AssociationSpec> = parse_json(&body)?;
    let primary = wants_primary(from, &types)?;
    let answer = writing(&shared, |world| {
        let pair = ends(&world.store, from, &from_id, &to_id)?;
        associate(&mut world.store, pair, Some(primary))?;
        Ok::<_, ApiError>(labels_between(&world.store, from, pair))
    })?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Removes every association between the two records; 204 whether or not there was one.
pub async fn delete_pair(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((from_type, from_id, to_type, to_id)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (from, _) = writable_pair(&granted, &from_type, &to_type)?;
    writing(&shared, |world| {
        if let Ok((company, contact)) = ends(&world.store, from, &from_id, &to_id) {
            // not associated: nothing to remove, still a 204
            let _ = world.store.disassociate(company, contact, API_SOURCE);
        }
    });
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RecordId {
    id: Value,
}

/// One input of a batch associate (no `types`: the default association) or batch create.
#[derive(Deserialize)]
struct PairInput {
    from: RecordId,
    to: RecordId,
    #[serde(default)]
    types: Option<Vec<AssociationSpec>>,
}

#[derive(Deserialize)]
struct ArchiveInput {
    from: RecordId,
    to: Vec<RecordId>,
}

#[derive(Deserialize)]
struct Inputs<T> {
    inputs: Vec<T>,
}

fn batch_inputs<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<Vec<T>, ApiError> {
    let batch: Inputs<T> = parse_json(body)?;
    if batch.inputs.len() > V4_WRITE_MAX {
        return Err(ApiError::validation(format!(
            "Batch input limit exceeded: {} inputs given, at most {V4_WRITE_MAX} are allowed.",
            batch.inputs.len()
        )));
    }
    Ok(batch.inputs)
}

/// One input that could not be written, as a 207 entry.
fn input_error(error: &ApiError, from_id: &str, to_id: &str) -> Value {
    json!({
        "status": "error",
        "category": error.body["category"],
        "message": error.body["message"],
        "context": { "fromObjectId": [from_id], "toObjectId": [to_id] },
    })
}

/// Writes each input; one that fails becomes its 207 entry and the rest still apply.
fn batch_write(
    shared: &AppState,
    from: ObjectKind,
    inputs: Vec<PairInput>,
    ok: StatusCode,
) -> Response {
    let started = iso(now_ms());
    let (results, errors) = writing(shared, |world| {
        let (mut results, mut errors) = (Vec::new(), Vec::new());
        for input in inputs {
            let (a, b) = (id_text(&input.from.id), id_text(&input.to.id));
            let written = match &input.types {
                None => ends(&world.store, from, &a, &b)
                    .and_then(|pair| associate(&mut world.store, pair, None))
                    .map(|()| default_rows(from, &a, &b).to_vec()),
                Some(types) => wants_primary(from, types).and_then(|primary| {
                    let pair = ends(&world.store, from, &a, &b)?;
                    associate(&mut world.store, pair, Some(primary))?;
                    Ok(vec![labels_between(&world.store, from, pair)])
                }),
            };
            match written {
                Ok(rows) => results.extend(rows),
                Err(e) => errors.push(input_error(&e, &a, &b)),
            }
        }
        (results, errors)
    });
    batch_answer(ok, started, results, errors)
}

pub async fn batch_associate_default(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((from_type, to_type)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (from, _) = writable_pair(&granted, &from_type, &to_type)?;
    let mut inputs: Vec<PairInput> = batch_inputs(&body)?;
    for input in &mut inputs {
        input.types = None;
    }
    Ok(batch_write(&shared, from, inputs, StatusCode::OK))
}

pub async fn batch_create(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((from_type, to_type)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (from, _) = writable_pair(&granted, &from_type, &to_type)?;
    let mut inputs: Vec<PairInput> = batch_inputs(&body)?;
    for input in &mut inputs {
        input.types.get_or_insert_with(Vec::new);
    }
    Ok(batch_write(&shared, from, inputs, StatusCode::CREATED))
}

pub async fn batch_archive(
    State(shared): State<AppState>,
    Extension(granted): Extension<Granted>,
    Path((from_type, to_type)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (from, _) = writable_pair(&granted, &from_type, &to_type)?;
    let inputs: Vec<ArchiveInput> = batch_inputs(&body)?;
    writing(&shared, |world| {
        for input in inputs {
            let a = id_text(&input.from.id);
            for to in input.to {
                if let Ok((company, contact)) = ends(&world.store, from, &a, &id_text(&to.id)) {
                    let _ = world.store.disassociate(company, contact, API_SOURCE);
                }
            }
        }
    });
    Ok(StatusCode::NO_CONTENT)
}

//! The control API under `/_sandbox/`: seed and reset, record mutations (which emit the
//! webhooks HubSpot would), list membership, tokens and scopes, property changes, faults,
//! webhook settings and flush, request counters. JSON in, JSON out.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::meta::PROPERTY_TYPES;
use crate::clock::{iso, now_ms};
use crate::config::{DEFAULT_SCOPES, Faults, RateLimitConfig, WebhookConfig};
use crate::model::{ObjectKind, PropertyOption};
use crate::store::StoreError;
use crate::webhooks;
use crate::world::World;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reset", post(reset))
        .route("/seed", post(seed))
        .route("/state", get(state))
        .route("/objects/{object_type}", post(create_record))
        .route("/objects/{object_type}/merge", post(merge_records))
        .route(
            "/objects/{object_type}/{id}",
            get(get_record).patch(update_record).delete(delete_record),
        )
        .route("/objects/{object_type}/{id}/restore", post(restore_record))
        .route("/associations", post(associate).delete(disassociate))
        .route("/lists", post(create_list))
        .route("/lists/{list_id}", delete(delete_list))
        .route(
            "/lists/{list_id}/members/{record_id}",
            put(add_member).delete(remove_member),
        )
        .route("/tokens", post(issue_tokens))
        .route("/tokens/revoke", post(revoke_tokens))
        .route("/tokens/expire", post(expire_tokens))
        .route("/scopes/remove", post(remove_scope))
        .route("/scopes/restore", post(restore_scope))
        .route("/properties/{object_type}/{name}", delete(delete_property))
        .route(
            "/properties/{object_type}/{name}/type",
            put(retype_property),
        )
        .route("/faults", get(get_faults).put(put_faults))
        .route("/rate-limits", get(get_rate_limits).put(put_rate_limits))
        .route("/webhooks", get(get_webhooks).put(put_webhooks))
        .route("/webhooks/flush", post(flush_webhooks))
        .route("/requests", get(requests).delete(reset_requests))
}

/// A control-API failure: `{"error": "..."}`.
pub struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Self(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Invalid(_) => Self(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, ControlError>;

fn bad(why: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, why.into())
}

fn body<T: DeserializeOwned + Default>(raw: &Bytes) -> Result<T> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

fn kind(segment: &str) -> Result<ObjectKind> {
    ObjectKind::parse(segment).ok_or_else(|| bad(format!("unknown object type {segment}")))
}

fn id(raw: &str) -> Result<u64> {
    raw.parse()
        .map_err(|_| bad(format!("ids are numeric, got {raw}")))
}

/// Applies the fields present in `patch` onto `current`.
fn patched<T: Serialize + DeserializeOwned>(current: &T, patch: Value) -> Result<T> {
    let mut merged = serde_json::to_value(current).map_err(|e| bad(e.to_string()))?;
    if let (Some(target), Value::Object(fields)) = (merged.as_object_mut(), patch) {
        for (k, v) in fields {
            target.insert(k, v);
        }
    }
    serde_json::from_value(merged).map_err(|e| bad(format!("invalid settings: {e}")))
}

/// Publishes the events of the mutation just made and wakes the sender.
fn published<T>(shared: &AppState, world: &mut World, value: T) -> T {
    world.publish_events();
    shared.wake.notify_one();
    value
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SeedRequest {
    pub seed: Option<u64>,
    pub companies: Option<usize>,
    pub contacts: Option<usize>,
}

fn summary(world: &World) -> Value {
    let store = &world.store;
    let live = |kind: ObjectKind| {
        store
            .records(kind)
            .values()
            .filter(|r| !r.is_archived())
            .count()
    };
    let archived = |kind: ObjectKind| {
        store
            .records(kind)
            .values()
            .filter(|r| r.is_archived())
            .count()
    };
    let lists: Vec<Value> = store
        .lists
        .values()
        .map(|l| json!({"id": l.id, "name": l.name, "object_type": l.object.plural(), "processing_type": l.processing_type, "members": l.members.len()}))
        .collect();
    json!({
        "seed": world.config.seed,
        "portal_id": world.config.app.portal_id,
        "app_id": world.config.app.app_id,
        "companies": live(ObjectKind::Companies),
        "contacts": live(ObjectKind::Contacts),
        "archived_companies": archived(ObjectKind::Companies),
        "archived_contacts": archived(ObjectKind::Contacts),
        "company_ids": store.companies.keys().next().map(|first| json!([first, store.companies.keys().last()])),
        "contact_ids": store.contacts.keys().next().map(|first| json!([first, store.contacts.keys().last()])),
        "owners": store.owners.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        "lists": lists,
        "pending_webhooks": world.outbox.queue.len(),
    })
}

/// Back to the start: the configured seed and sizes, no tokens, no faults, no counters.
async fn reset(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Value>> {
    let request: SeedRequest = body(&raw)?;
    let mut world = shared.lock();
    let initial = world.initial.clone();
    let mut fresh = World::new(crate::config::SandboxConfig {
        seed: request.seed.unwrap_or(initial.seed),
        companies: request.companies.unwrap_or(initial.companies),
        contacts: request.contacts.unwrap_or(initial.contacts),
        ..initial
    });
    fresh.initial = world.initial.clone();
    *world = fresh;
    Ok(Json(summary(&world)))
}

/// Replaces the CRM data with the portal generated from `seed` (tokens and settings stay).
async fn seed(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Value>> {
    let request: SeedRequest = body(&raw)?;
    let mut world = shared.lock();
    let seed = request.seed.unwrap_or(world.config.seed);
    let companies = request.companies.unwrap_or(world.config.companies);
    let contacts = request.contacts.unwrap_or(companies);
    world.reseed(seed, companies, contacts);
    Ok(Json(summary(&world)))
}

async fn state(State(shared): State<AppState>) -> Json<Value> {
    Json(summary(&shared.lock()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RecordChange {
    properties: BTreeMap<String, String>,
    change_source: Option<String>,
}

fn source(change: &RecordChange) -> String {
    change
        .change_source
        .clone()
        .unwrap_or_else(|| "CRM_UI".to_owned())
}

/// The record as the control API shows it: envelope, every property, associations.
fn raw_record(world: &World, kind: ObjectKind, id: u64) -> Option<Value> {
    let store = &world.store;
    let record = store.records(kind).get(&id)?;
    let mut properties = serde_json::Map::new();
    for def in store
        .properties
        .get(&kind)
        .into_iter()
        .flatten()
        .filter(|d| !d.archived)
    {
        if let Some(v) = store.value(kind, record, &def.name) {
            properties.insert(def.name.clone(), json!(v));
        }
    }
    let lists: Vec<u64> = store
        .lists
        .values()
        .filter(|l| l.object == kind && l.members.contains_key(&id))
        .map(|l| l.id)
        .collect();
    Some(json!({
        "id": id.to_string(),
        "properties": properties,
        "createdAt": iso(record.created_ms),
        "updatedAt": iso(record.updated_ms),
        "archived": record.is_archived(),
        "archivedAt": record.archived_ms.map(iso),
        "associations": store.associated(kind, id).iter().map(u64::to_string).collect::<Vec<_>>(),
        "lists": lists,
    }))
}

async fn create_record(
    State(shared): State<AppState>,
    Path(object_type): Path<String>,
    raw: Bytes,
) -> Result<Response> {
    let kind = kind(&object_type)?;
    let change: RecordChange = body(&raw)?;
    let mut world = shared.lock();
    let id = world
        .store
        .create(kind, change.properties.clone(), &source(&change))?;
    let record = raw_record(&world, kind, id);
    let record = published(&shared, &mut world, record);
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

async fn get_record(
    State(shared): State<AppState>,
    Path((object_type, raw_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let kind = kind(&object_type)?;
    let world = shared.lock();
    let resolved = world.store.resolve(kind, id(&raw_id)?);
    raw_record(&world, kind, resolved).map(Json).ok_or_else(|| {
        ControlError(
            StatusCode::NOT_FOUND,
            format!("no {} {raw_id}", kind.singular()),
        )
    })
}

async fn update_record(
    State(shared): State<AppState>,
    Path((object_type, raw_id)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let kind = kind(&object_type)?;
    let record_id = id(&raw_id)?;
    let change: RecordChange = body(&raw)?;
    let mut world = shared.lock();
    let changed =
        world
            .store
            .update(kind, record_id, change.properties.clone(), &source(&change))?;
    let record = raw_record(&world, kind, record_id);
    Ok(Json(published(
        &shared,
        &mut world,
        json!({ "changed": changed, "record": record }),
    )))
}

async fn delete_record(
    State(shared): State<AppState>,
    Path((object_type, raw_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let kind = kind(&object_type)?;
    let record_id = id(&raw_id)?;
    let mut world = shared.lock();
    world.store.archive(kind, record_id, "CRM_UI")?;
    Ok(published(&shared, &mut world, StatusCode::NO_CONTENT))
}

async fn restore_record(
    State(shared): State<AppState>,
    Path((object_type, raw_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let kind = kind(&object_type)?;
    let record_id = id(&raw_id)?;
    let mut world = shared.lock();
    world.store.restore(kind, record_id, "CRM_UI")?;
    let record = raw_record(&world, kind, record_id);
    Ok(Json(published(&shared, &mut world, json!(record))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MergeRequest {
    primary_id: u64,
    merged_id: u64,
    /// The survivor gets a new id (HubSpot does this for some merges).
    new_id: bool,
}

async fn merge_records(
    State(shared): State<AppState>,
    Path(object_type): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let kind = kind(&object_type)?;
    let request: MergeRequest = body(&raw)?;
    let mut world = shared.lock();
    let survivor = world.store.merge(
        kind,
        request.primary_id,
        request.merged_id,
        request.new_id,
        "CRM_UI",
    )?;
    let record = raw_record(&world, kind, survivor);
    Ok(Json(published(
        &shared,
        &mut world,
        json!({ "id": survivor.to_string(), "record": record }),
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AssociationRequest {
    company_id: u64,
    contact_id: u64,
    primary: bool,
}

async fn associate(State(shared): State<AppState>, raw: Bytes) -> Result<StatusCode> {
    let request: AssociationRequest = body(&raw)?;
    let mut world = shared.lock();
    world.store.associate(
        request.company_id,
        request.contact_id,
        request.primary,
        "CRM_UI",
    )?;
    Ok(published(&shared, &mut world, StatusCode::NO_CONTENT))
}

async fn disassociate(State(shared): State<AppState>, raw: Bytes) -> Result<StatusCode> {
    let request: AssociationRequest = body(&raw)?;
    let mut world = shared.lock();
    world
        .store
        .disassociate(request.company_id, request.contact_id, "CRM_UI")?;
    Ok(published(&shared, &mut world, StatusCode::NO_CONTENT))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListRequest {
    name: String,
    object_type: Option<String>,
    processing_type: Option<String>,
}

/// Deletes a list as a HubSpot user would: its id answers 404 from then on.
async fn delete_list(
    State(shared): State<AppState>,
    Path(list_id): Path<String>,
) -> Result<Json<Value>> {
    let id: u64 = list_id
        .parse()
        .map_err(|_| bad(format!("{list_id:?} is not a list id")))?;
    let removed = shared.lock().store.lists.remove(&id).is_some();
    if !removed {
        return Err(ControlError(StatusCode::NOT_FOUND, format!("no list {id}")));
    }
    Ok(Json(json!({ "deleted": id.to_string() })))
}

async fn create_list(State(shared): State<AppState>, raw: Bytes) -> Result<Response> {
    let request: ListRequest = body(&raw)?;
    if request.name.trim().is_empty() {
        return Err(bad("a list needs a name"));
    }
    let object = kind(request.object_type.as_deref().unwrap_or("companies"))?;
    let processing_type = request
        .processing_type
        .unwrap_or_else(|| "MANUAL".to_owned());
    let list_id = shared
        .lock()
        .store
        .create_list(request.name, object, processing_type);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": list_id.to_string() })),
    )
        .into_response())
}

async fn set_member(
    shared: &AppState,
    list_id: &str,
    record_id: &str,
    member: bool,
) -> Result<Json<Value>> {
    let (list_id, record_id) = (id(list_id)?, id(record_id)?);
    let mut world = shared.lock();
    let changed = world
        .store
        .set_list_membership(list_id, record_id, member)?;
    Ok(Json(json!({ "changed": changed })))
}

async fn add_member(
    State(shared): State<AppState>,
    Path((list_id, record_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    set_member(&shared, &list_id, &record_id, true).await
}

async fn remove_member(
    State(shared): State<AppState>,
    Path((list_id, record_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    set_member(&shared, &list_id, &record_id, false).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenRequest {
    scopes: Option<Vec<String>>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

/// Mints a token pair without the OAuth dance (same shape as the token endpoint).
async fn issue_tokens(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Value>> {
    let request: TokenRequest = body(&raw)?;
    let scopes = request
        .scopes
        .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    let mut world = shared.lock();
    let ttl = world.config.access_token_ttl_secs;
    let now = now_ms();
    let world = &mut *world;
    let grant = world.oauth.grant(&mut world.rng, scopes, ttl, now);
    Ok(Json(json!({
        "token_type": "bearer",
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "expires_in": grant.expires_in,
        "scopes": grant.scopes,
        "hub_id": world.config.app.portal_id,
    })))
}

/// Revokes one refresh token (and its access tokens), or every token (an uninstall).
async fn revoke_tokens(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Value>> {
    let request: TokenRequest = body(&raw)?;
    let revoked = shared.lock().oauth.revoke(request.refresh_token.as_deref());
    Ok(Json(json!({ "revoked_refresh_tokens": revoked })))
}

async fn expire_tokens(State(shared): State<AppState>) -> Json<Value> {
    let expired = shared.lock().oauth.expire_access_tokens(now_ms());
    Json(json!({ "expired_access_tokens": expired }))
}

fn scope_of(raw: &Bytes) -> Result<String> {
    let request: TokenRequest = body(raw)?;
    request
        .scope
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("body needs {\"scope\": \"...\"}"))
}

async fn remove_scope(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Value>> {
    let scope = scope_of(&raw)?;
    let mut world = shared.lock();
    world.oauth.removed_scopes.insert(scope);
    Ok(Json(
        json!({ "removed_scopes": world.oauth.removed_scopes }),
    ))
}

async fn restore_scope(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Value>> {
    let scope = scope_of(&raw)?;
    let mut world = shared.lock();
    world.oauth.removed_scopes.remove(&scope);
    Ok(Json(
        json!({ "removed_scopes": world.oauth.removed_scopes }),
    ))
}

async fn delete_property(
    State(shared): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    let kind = kind(&object_type)?;
    shared.lock().store.delete_property(kind, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RetypeRequest {
    #[serde(rename = "type")]
    new_type: String,
    field_type: Option<String>,
    options: Option<Vec<PropertyOption>>,
}

fn default_field_type(new_type: &str) -> &'static str {
    match new_type {
        "number" => "number",
        "bool" => "booleancheckbox",
        "enumeration" => "select",
        "date" | "datetime" => "date",
        "phone_number" => "phonenumber",
        _ => "text",
    }
}

async fn retype_property(
    State(shared): State<AppState>,
    Path((object_type, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<Value>> {
    let kind = kind(&object_type)?;
    let request: RetypeRequest = body(&raw)?;
    if !PROPERTY_TYPES.contains(&request.new_type.as_str()) {
        return Err(bad(format!("type must be one of {PROPERTY_TYPES:?}")));
    }
    let field_type = request
        .field_type
        .clone()
        .unwrap_or_else(|| default_field_type(&request.new_type).to_owned());
    let mut world = shared.lock();
    world
        .store
        .retype_property(kind, &name, &request.new_type, &field_type, request.options)?;
    let def = world
        .store
        .property(kind, &name)
        .and_then(|d| serde_json::to_value(d).ok());
    Ok(Json(def.unwrap_or(Value::Null)))
}

async fn get_faults(State(shared): State<AppState>) -> Json<Faults> {
    Json(shared.lock().config.faults.clone())
}

/// Replaces every fault switch (fields left out are off).
async fn put_faults(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Faults>> {
    let faults: Faults = body(&raw)?;
    for (name, rate) in [
        ("error_5xx_rate", faults.error_5xx_rate),
        ("rate_429", faults.rate_429),
        ("webhook_drop_rate", faults.webhook_drop_rate),
        ("webhook_duplicate_rate", faults.webhook_duplicate_rate),
        ("webhook_reorder_rate", faults.webhook_reorder_rate),
        ("webhook_fail_rate", faults.webhook_fail_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(bad(format!("{name} must be within 0.0..=1.0")));
        }
    }
    shared.lock().config.faults = faults.clone();
    Ok(Json(faults))
}

async fn get_rate_limits(State(shared): State<AppState>) -> Json<RateLimitConfig> {
    Json(shared.lock().config.rate_limit.clone())
}

/// Changes the fields given and starts fresh windows.
async fn put_rate_limits(
    State(shared): State<AppState>,
    raw: Bytes,
) -> Result<Json<RateLimitConfig>> {
    let patch: Value = body(&raw)?;
    let mut world = shared.lock();
    let limits: RateLimitConfig = patched(&world.config.rate_limit, patch)?;
    if limits.max_per_interval == 0 || limits.interval_ms == 0 || limits.search_per_second == 0 {
        return Err(bad("limits must be positive"));
    }
    world.config.rate_limit = limits.clone();
    world.limiter.general.clear();
    world.limiter.search.clear();
    Ok(Json(limits))
}

fn webhook_view(world: &World) -> Value {
    json!({
        "settings": world.config.webhooks,
        "stats": world.outbox.stats,
        "pending": world.outbox.queue.len(),
        "log": world.outbox.log,
    })
}

async fn get_webhooks(State(shared): State<AppState>) -> Json<Value> {
    Json(webhook_view(&shared.lock()))
}

/// Changes the webhook settings given (target URL, enabled, auto delivery, retry pace, ...).
async fn put_webhooks(State(shared): State<AppState>, raw: Bytes) -> Result<Json<Value>> {
    let patch: Value = body(&raw)?;
    let view = {
        let mut world = shared.lock();
        let settings: WebhookConfig = patched(&world.config.webhooks, patch)?;
        if let Some(url) = &settings.target_url {
            url::Url::parse(url).map_err(|e| bad(format!("target_url: {e}")))?;
        }
        world.config.webhooks = settings;
        webhook_view(&world)
    };
    shared.wake.notify_one();
    Ok(Json(view))
}

async fn flush_webhooks(State(shared): State<AppState>) -> Json<webhooks::FlushReport> {
    Json(webhooks::deliver(&shared, true).await)
}

async fn requests(State(shared): State<AppState>) -> Json<crate::counters::CountersReport> {
    Json(shared.lock().counters.report())
}

async fn reset_requests(State(shared): State<AppState>) -> StatusCode {
    let mut world = shared.lock();
    world.counters = crate::counters::Counters {
        since_ms: now_ms(),
        ..Default::default()
    };
    StatusCode::NO_CONTENT
}

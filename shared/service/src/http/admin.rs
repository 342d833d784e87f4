//! The admin API, under `/admin`. Every route authenticates the caller's tenant from its
//! bearer token and acts for that tenant only; another tenant's ids are simply not found.
//! Documented in `shared/service/openapi.yaml`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use connector::engine::admin::LogQuery;
use connector::ports::{ArchivedFilter, PageRequest};
use connector::{
    CompanyFilter, ConflictId, ConnectionId, CustomerId, FieldMapping, LogEntryId, MatchResolution,
    NightlyTime, NotificationId, PendingMatchId, PendingMatchStatus, Provider, PushSettings,
    Secret, SourceId, SyncDirection, TenantId, Timestamp,
};

use super::error::ApiError;
use crate::app::App;
use crate::auth::{AuthError, TokenKind};
use crate::notifications::NotificationView;

/// The admin API, its OpenAPI document, the console and the records API: what the
/// admin function serves.
pub fn router(app: Arc<App>) -> Router {
    api_router(app.clone())
        .merge(super::records::router(app.clone()))
        .merge(crate::console::router(app))
}

fn api_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/admin/openapi.yaml", get(openapi))
        .route("/admin/console-link", post(console_link))
        .route(
            "/admin/connections",
            get(list_connections).post(create_connection),
        )
        .route("/admin/connections/{id}", get(connection))
        .route("/admin/connections/{id}/authorize", post(authorize))
        .route("/admin/connections/{id}/api-key", post(connect_api_key))
        .route("/admin/connections/{id}/disconnect", post(disconnect))
        .route("/admin/connections/{id}/sync", post(run_sync_now))
        .route("/admin/connections/{id}/schedule", put(set_schedule))
        .route("/admin/connections/{id}/direction", put(set_direction))
        .route("/admin/connections/{id}/test-lead", post(send_test_lead))
        .route(
            "/admin/connections/{id}/test-lead/{contact}",
            delete(delete_test_lead),
        )
        .route("/admin/records-token", post(records_token))
        .route("/admin/connections/{id}/runs", get(runs))
        .route("/admin/connections/{id}/log", get(log))
        .route(
            "/admin/connections/{id}/mapping",
            get(mapping).put(set_mapping),
        )
        .route(
            "/admin/connections/{id}/mapping/validate",
            post(validate_mapping),
        )
        .route(
            "/admin/connections/{id}/filter",
            get(filter).put(set_filter),
        )
        .route(
            "/admin/connections/{id}/filter/choices",
            get(filter_choices),
        )
        .route(
            "/admin/connections/{id}/filter/preview",
            post(preview_filter),
        )
        .route("/admin/connections/{id}/archives", get(held_archives))
        .route(
            "/admin/connections/{id}/archives/approve",
            post(approve_archives),
        )
        .route(
            "/admin/connections/{id}/archives/reject",
            post(reject_archives),
        )
        .route("/admin/connections/{id}/conflicts", get(conflicts))
        .route("/admin/conflicts/{id}/restore", post(restore_conflict))
        .route("/admin/log/{entry}", get(log_entry))
        .route("/admin/log/{entry}/report", get(log_report))
        .route("/admin/log/{entry}/retry", post(retry_log_entry))
        .route("/admin/customers", get(customers))
        .route(
            "/admin/customers/{id}",
            get(customer).delete(delete_customer),
        )
        .route("/admin/customers/{id}/resync", post(resync_customer))
        .route("/admin/matches", get(matches))
        .route("/admin/matches/{id}/resolve", post(resolve_match))
        .route("/admin/notifications", get(notifications))
        .route("/admin/notifications/read", post(read_all_notifications))
        .route("/admin/notifications/{id}/read", post(read_notification))
        .fallback(
            delete(not_found)
                .get(not_found)
                .post(not_found)
                .put(not_found),
        )
        .with_state(app)
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/yaml")],
        include_str!("../../openapi.yaml"),
    )
}

/// A one-time console sign-in link for the caller's tenant.
async fn console_link(State(app): State<Arc<App>>, Tenant(t): Tenant) -> ApiResult {
    let auth = app.admin_auth.as_ref().ok_or(AuthError::NotConfigured)?;
    let (path, expires_at) = crate::console::sign_in_link_path(auth, &t, Timestamp::now());
    Ok(Json(json!({"path": path, "expires_at": expires_at})))
}

async fn notifications(State(app): State<Arc<App>>, Tenant(t): Tenant) -> ApiResult {
    let feed = app.engine.notification_feed(&t).await?;
    let views: Vec<NotificationView> = feed
        .notifications
        .iter()
        .map(NotificationView::of)
        .collect();
    Ok(Json(
        json!({"unread": feed.unread, "open": feed.open, "notifications": views}),
    ))
}

async fn read_notification(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<NotificationId>,
) -> ApiResult {
    let read = app.engine.mark_notification_read(&t, &id).await?;
    Ok(Json(json!(NotificationView::of(&read))))
}

async fn read_all_notifications(State(app): State<Arc<App>>, Tenant(t): Tenant) -> ApiResult {
    let marked = app.engine.mark_all_notifications_read(&t).await?;
    Ok(Json(json!({"marked": marked})))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The authenticated caller's tenant.
pub struct Tenant(pub TenantId);

impl FromRequestParts<Arc<App>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let auth = app.admin_auth.as_ref().ok_or(AuthError::NotConfigured)?;
        Ok(Tenant(auth.verify(token, Timestamp::now())?))
    }
}

/// The request's `Authorization: Bearer` token.
pub(super) fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::Missing)?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or(AuthError::Malformed)
}

/// Query parameters, refused with the API's own `{code, detail}` body when they do not parse.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Params)
            .map_err(|e| ApiError::bad_request(format!("invalid query parameters: {e}")))
    }
}

/// The route's id, refused with 400 and the reason when it is not one.
pub struct PathId<T>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: std::str::FromStr<Err = connector::ParseError>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        raw.parse()
            .map(PathId)
            .map_err(|e: connector::ParseError| ApiError::bad_request(e.to_string()))
    }
}

pub(super) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<usize>,
    cursor: Option<String>,
}

impl Paging {
    /// Every listing's page: `limit` (50 unless given) and the cursor it returned.
    fn request(&self) -> PageRequest {
        PageRequest {
            limit: self.limit.unwrap_or(50),
            cursor: self.cursor.clone(),
        }
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

async fn list_connections(State(app): State<Arc<App>>, Tenant(t): Tenant) -> ApiResult {
    Ok(Json(
        json!({"connections": app.engine.list_connection_views(&t).await?}),
    ))
}

#[derive(Deserialize)]
struct NewConnection {
    provider: String,
}

async fn create_connection(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    raw: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewConnection = body(&raw)?;
    let provider =
        Provider::parse(&new.provider).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(json!(app.engine.create_connection(&t, provider).await?)),
    ))
}

async fn connection(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult {
    Ok(Json(json!(app.engine.view_connection(&t, &id).await?)))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    /// Ask for the write scopes too, ahead of turning pushes on.
    #[serde(default)]
    writes: bool,
}

async fn authorize(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    Params(q): Params<AuthorizeQuery>,
) -> ApiResult {
    let url = crate::oauth::start(&app, &t, &id, q.writes).await?;
    Ok(Json(json!({"authorize_url": url})))
}

/// Never `Debug`: it holds the key.
#[derive(Deserialize)]
struct ApiKeyBody {
    api_key: Secret,
    #[serde(default)]
    webhook_secret: Option<Secret>,
}

async fn connect_api_key(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    raw: Bytes,
) -> ApiResult {
    let new: ApiKeyBody = body(&raw)?;
    crate::stripe::connect_api_key(&app, &t, &id, new.api_key, new.webhook_secret).await?;
    Ok(Json(json!(app.engine.view_connection(&t, &id).await?)))
}

async fn disconnect(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult {
    Ok(Json(json!(app.engine.disconnect(&t, &id).await?)))
}

async fn run_sync_now(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run = app.engine.run_sync_now(&t, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(run))))
}

#[derive(Deserialize)]
struct Schedule {
    nightly_at: String,
}

async fn set_schedule(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    raw: Bytes,
) -> ApiResult {
    let schedule: Schedule = body(&raw)?;
    let at = NightlyTime::parse(&schedule.nightly_at)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(json!(app.engine.set_nightly_time(&t, &id, at).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Direction {
    direction: SyncDirection,
    #[serde(default)]
    push: PushSettings,
}

async fn set_direction(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    raw: Bytes,
) -> ApiResult {
    let wanted: Direction = body(&raw)?;
    app.engine
        .set_direction(&t, &id, wanted.direction, wanted.push)
        .await?;
    Ok(Json(json!(app.engine.view_connection(&t, &id).await?)))
}

async fn send_test_lead(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult {
    Ok(Json(json!(app.engine.send_test_lead(&t, &id).await?)))
}

async fn delete_test_lead(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    Path((id, contact)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = ConnectionId::parse(id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let contact = SourceId::parse(contact).map_err(|e| ApiError::bad_request(e.to_string()))?;
    app.engine.delete_test_lead(&t, &id, &contact).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How long a records credential lasts.
const RECORDS_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// A credential for the product's backend to call the records API as this tenant.
async fn records_token(State(app): State<Arc<App>>, Tenant(t): Tenant) -> ApiResult {
    let auth = app.admin_auth.as_ref().ok_or(AuthError::NotConfigured)?;
    let expires_at = Timestamp::now().plus(RECORDS_TOKEN_LIFETIME);
    let token = auth.issue_kind(TokenKind::Records, &t, expires_at);
    Ok(Json(
        json!({"token": token.expose(), "expires_at": expires_at}),
    ))
}

async fn runs(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    Params(p): Params<Paging>,
) -> ApiResult {
    Ok(Json(json!(
        app.engine.admin_runs(&t, &id, p.request()).await?
    )))
}

#[derive(Deserialize)]
struct LogParams {
    #[serde(default)]
    errors_only: bool,
    code: Option<String>,
    record_id: Option<String>,
}

impl LogParams {
    fn query(&self) -> Result<LogQuery, ApiError> {
        Ok(LogQuery::from_text(
            self.errors_only,
            self.code.as_deref(),
            self.record_id.as_deref(),
        )?)
    }
}

async fn log(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    Params(q): Params<LogParams>,
    Params(paging): Params<Paging>,
) -> ApiResult {
    let query = q.query()?;
    Ok(Json(json!(
        app.engine
            .admin_log(&t, &id, &query, paging.request())
            .await?
    )))
}

async fn conflicts(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    Params(paging): Params<Paging>,
) -> ApiResult {
    Ok(Json(json!(
        app.engine.conflicts(&t, &id, paging.request()).await?
    )))
}

async fn restore_conflict(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConflictId>,
) -> ApiResult {
    Ok(Json(json!(app.engine.restore_conflict(&t, &id).await?)))
}

async fn log_entry(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(entry): PathId<LogEntryId>,
) -> ApiResult {
    let row = app.engine.admin_log_entry(&t, &entry).await?;
    let mut view = json!(row);
    if let (Some(code), Some(map)) = (row.error_code, view.as_object_mut()) {
        map.insert("error".into(), json!(code.explained()));
    }
    Ok(Json(view))
}

/// The row bundled for support, as a file to download.
async fn log_report(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(entry): PathId<LogEntryId>,
) -> Result<axum::response::Response, ApiError> {
    let report = app.engine.support_report(&t, &entry).await?;
    Ok(crate::http::report_download(&report))
}

async fn retry_log_entry(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(entry): PathId<LogEntryId>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let job = app.engine.retry_log_entry(&t, &entry).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"job_id": job.id}))))
}

async fn mapping(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult {
    Ok(Json(json!(
        app.engine.admin_connection(&t, &id).await?.field_mapping
    )))
}

async fn validate_mapping(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    raw: Bytes,
) -> ApiResult {
    let candidate: FieldMapping = if raw.is_empty() {
        app.engine.admin_connection(&t, &id).await?.field_mapping
    } else {
        body(&raw)?
    };
    let problems = app
        .engine
        .validate_field_mapping(&t, &id, &candidate)
        .await?;
    Ok(Json(
        json!({"valid": problems.is_empty(), "problems": problems}),
    ))
}

async fn set_mapping(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    raw: Bytes,
) -> ApiResult {
    let new: FieldMapping = body(&raw)?;
    Ok(Json(json!(
        app.engine
            .set_field_mapping(&t, &id, new)
            .await?
            .field_mapping
    )))
}

async fn filter(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult {
    Ok(Json(json!(
        app.engine.admin_connection(&t, &id).await?.company_filter
    )))
}

async fn filter_choices(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult {
    Ok(Json(json!(
        app.engine.company_filter_choices(&t, &id).await?
    )))
}

async fn preview_filter(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    raw: Bytes,
) -> ApiResult {
    let filter: CompanyFilter = body(&raw)?;
    Ok(Json(json!(
        app.engine.preview_company_filter(&t, &id, filter).await?
    )))
}

async fn set_filter(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    raw: Bytes,
) -> ApiResult {
    let new: CompanyFilter = body(&raw)?;
    let (connection, run) = app.engine.set_company_filter(&t, &id, new).await?;
    Ok(Json(
        json!({"company_filter": connection.company_filter, "sync_run": run}),
    ))
}

async fn held_archives(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
    Params(p): Params<Paging>,
) -> ApiResult {
    Ok(Json(json!(
        app.engine.held_archives(&t, &id, p.request()).await?
    )))
}

async fn approve_archives(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let run = app.engine.approve_held_archives(&t, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"sync_run": run}))))
}

async fn reject_archives(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<ConnectionId>,
) -> ApiResult {
    app.engine.reject_held_archives(&t, &id).await?;
    Ok(Json(json!({"rejected": true})))
}

#[derive(Deserialize)]
struct CustomerQuery {
    archived: Option<String>,
    q: Option<String>,
}

impl CustomerQuery {
    fn archived(&self) -> Result<ArchivedFilter, ApiError> {
        match self.archived.as_deref() {
            None | Some("false") => Ok(ArchivedFilter::Active),
            Some("true") => Ok(ArchivedFilter::Archived),
            Some("all") => Ok(ArchivedFilter::All),
            Some(other) => Err(ApiError::bad_request(format!(
                "archived must be true, false or all, not {other:?}"
            ))),
        }
    }
}

async fn customers(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    Params(q): Params<CustomerQuery>,
    Params(paging): Params<Paging>,
) -> ApiResult {
    let filter = q.archived()?;
    if let Some(query) = q.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let items = app.engine.search_customers(&t, query, filter).await?;
        return Ok(Json(json!({"items": items, "next": null})));
    }
    let page = paging.request();
    Ok(Json(json!(
        app.engine.admin_customers(&t, filter, page).await?
    )))
}

async fn customer(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<CustomerId>,
) -> ApiResult {
    Ok(Json(json!(
        app.engine.admin_customer_detail(&t, &id).await?
    )))
}

async fn delete_customer(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<CustomerId>,
) -> Result<StatusCode, ApiError> {
    app.engine.delete_customer_permanently(&t, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ResyncQuery {
    provider: Option<String>,
}

async fn resync_customer(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<CustomerId>,
    Params(q): Params<ResyncQuery>,
) -> ApiResult {
    let provider = Provider::parse(q.provider.as_deref().unwrap_or("hubspot"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(json!(
        app.engine.resync_customer(&t, &id, provider).await?
    )))
}

#[derive(Deserialize)]
struct MatchQuery {
    status: Option<String>,
}

async fn matches(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    Params(q): Params<MatchQuery>,
    Params(paging): Params<Paging>,
) -> ApiResult {
    let status = match q.status.as_deref() {
        None | Some("open") => PendingMatchStatus::Open,
        Some("resolved") => PendingMatchStatus::Resolved,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "status must be open or resolved, not {other:?}"
            )));
        }
    };
    let page = paging.request();
    Ok(Json(json!(
        app.engine.admin_matches(&t, status, page).await?
    )))
}

async fn resolve_match(
    State(app): State<Arc<App>>,
    Tenant(t): Tenant,
    PathId(id): PathId<PendingMatchId>,
    raw: Bytes,
) -> ApiResult {
    let resolution: MatchResolution = body(&raw)?;
    Ok(Json(json!(
        app.engine.resolve_match(&t, &id, resolution).await?
    )))
}

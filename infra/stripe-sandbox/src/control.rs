//! The control API under `/_sandbox/` (JSON in and out): reset, seed, mutations that record
//! Stripe events, keys and revocation, faults, webhooks and flush, clock, request counters.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{RateLimits, WebhookConfig};
use crate::error::ApiError;
use crate::model::{
    CouponDuration, CustomerInput, Metadata, Recurring, SubscriptionInput, SubscriptionStatus,
    SubscriptionUpdate,
};
use crate::render::{self, View};
use crate::seed::{self, SeedRequest};
use crate::server::AppState;
use crate::store::{Account, Ctx, NewCoupon, NewPrice, NewProduct};
use crate::webhooks;
use crate::world::{ApiKey, Faults, KeyAccess, World};

/// Which account (and mode) a control call acts on; defaults to the platform account in test mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub livemode: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerRequest {
    #[serde(flatten)]
    pub target: Target,
    #[serde(flatten)]
    pub customer: CustomerInput,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionRequest {
    #[serde(flatten)]
    pub target: Target,
    #[serde(flatten)]
    pub subscription: SubscriptionInput,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionUpdateRequest {
    #[serde(flatten)]
    pub target: Target,
    #[serde(flatten)]
    pub update: SubscriptionUpdate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRequest {
    #[serde(flatten)]
    pub target: Target,
    pub status: SubscriptionStatus,
}

/// A price (its product is found by name or created).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceRequest {
    #[serde(flatten)]
    pub target: Target,
    pub product_name: String,
    pub currency: String,
    pub unit_amount: i64,
    /// `None` = a one-time price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring: Option<Recurring>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CouponRequest {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_off: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub duration: CouponDuration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_in_months: Option<u32>,
}

/// A new API key: restricted when `permissions` is given (e.g. `["customer_read", "event_read"]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRequest {
    #[serde(flatten)]
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub id: String,
}

/// Partial webhook settings: absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Shorthand for `secrets: [secret]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_deliver: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_schedule_ms: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder_delay_ms: Option<u64>,
}

fn error_response(err: &ApiError) -> Response {
    (
        err.status,
        axum::Json(err.body("req_sandbox_control", false)),
    )
        .into_response()
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_request(format!("Invalid control request: {e}")))
}

fn ok<T: Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

fn target_of(world: &World, target: &Target) -> (String, bool) {
    (
        target
            .account
            .clone()
            .unwrap_or_else(|| world.config.platform_account.clone()),
        target.livemode,
    )
}

/// Runs a mutation on the target account as an automatic (non-API) change, then queues its events.
fn mutate<T>(
    world: &mut World,
    target: &Target,
    f: impl FnOnce(&mut Account, &mut Ctx) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    world.begin(None);
    let (account, livemode) = target_of(world, target);
    let (acct, ctx) = world.account_and_ctx(&account, livemode);
    let out = f(acct, ctx);
    world.enqueue_outbox();
    out
}

fn query_target(query: Option<String>) -> Target {
    let parsed: Vec<(String, String)> = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let get = |k: &str| {
        parsed
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    Target {
        account: get("account"),
        livemode: get("livemode").as_deref() == Some("true"),
    }
}

async fn reset(State(shared): State<AppState>) -> Response {
    let mut world = shared.world.lock().await;
    world.reset();
    ok(&json!({ "reset": true }))
}

async fn seed_handler(State(shared): State<AppState>, body: Bytes) -> Response {
    let request: SeedRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    let result = seed::seed(&mut world, &request);
    drop(world);
    shared.notify.notify_one();
    match result {
        Ok(report) => ok(&report),
        Err(e) => error_response(&e),
    }
}

fn respond<T: Serialize>(shared: &AppState, result: Result<T, ApiError>) -> Response {
    shared.notify.notify_one();
    match result {
        Ok(v) => ok(&v),
        Err(e) => error_response(&e),
    }
}

async fn create_customer(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: CustomerRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &req.target, |acct, ctx| {
            acct.create_customer(ctx, req.customer.clone())
        })
        .map(|id| Created { id })
    };
    respond(&shared, result)
}

async fn update_customer(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let req: CustomerRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &req.target, |acct, ctx| {
            acct.update_customer(ctx, &id, req.customer.clone())
        })
        .map(|()| Created { id })
    };
    respond(&shared, result)
}

async fn delete_customer(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let target = query_target(query);
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &target, |acct, ctx| {
            acct.delete_customer(ctx, &id)
        })
        .map(|()| render::deleted(&id, "customer"))
    };
    respond(&shared, result)
}

async fn create_subscription(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: SubscriptionRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &req.target, |acct, ctx| {
            acct.create_subscription(ctx, req.subscription.clone())
        })
        .map(|id| Created { id })
    };
    respond(&shared, result)
}

async fn update_subscription(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let req: SubscriptionUpdateRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &req.target, |acct, ctx| {
            acct.update_subscription(ctx, &id, req.update.clone())
        })
        .map(|()| Created { id })
    };
    respond(&shared, result)
}

async fn set_subscription_status(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let req: StatusRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let update = SubscriptionUpdate {
        status: Some(req.status),
        ..SubscriptionUpdate::default()
    };
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &req.target, |acct, ctx| {
            acct.update_subscription(ctx, &id, update)
        })
        .map(|()| Created { id })
    };
    respond(&shared, result)
}

async fn cancel_subscription(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let target = query_target(query);
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &target, |acct, ctx| {
            acct.cancel_subscription(ctx, &id)
        })
        .map(|()| Created { id })
    };
    respond(&shared, result)
}

async fn create_price(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: PriceRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &req.target, |acct, ctx| {
            let existing = acct
                .products
                .iter()
                .find(|p| p.name == req.product_name && !p.deleted)
                .map(|p| p.id.clone());
            let product = match existing {
                Some(id) => id,
                None => acct.create_product(
                    ctx,
                    NewProduct {
                        id: None,
                        name: req.product_name.clone(),
                        description: None,
                        metadata: Metadata::new(),
                        created: None,
                    },
                )?,
            };
            acct.create_price(
                ctx,
                NewPrice {
                    product,
                    currency: req.currency.clone(),
                    unit_amount: Some(req.unit_amount),
                    unit_amount_decimal: None,
                    recurring: req.recurring.clone(),
                    tiers_mode: None,
                    tiers: Vec::new(),
                    transform_quantity: None,
                    tax_behavior: None,
                    nickname: None,
                    lookup_key: req.lookup_key.clone(),
                    metadata: Metadata::new(),
                    created: None,
                },
            )
        })
        .map(|id| Created { id })
    };
    respond(&shared, result)
}

async fn create_coupon(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: CouponRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let result = {
        let mut world = shared.world.lock().await;
        mutate(&mut world, &req.target, |acct, ctx| {
            acct.create_coupon(
                ctx,
                NewCoupon {
                    id: req.id.clone(),
                    name: None,
                    percent_off: req.percent_off,
                    amount_off: req.amount_off,
                    currency: req.currency.clone(),
                    duration: req.duration,
                    duration_in_months: req.duration_in_months,
                    applies_to_products: None,
                    metadata: Metadata::new(),
                    created: None,
                },
            )
        })
        .map(|id| Created { id })
    };
    respond(&shared, result)
}

/// `GET /_sandbox/state`: accounts and object counts.
async fn state(State(shared): State<AppState>) -> Response {
    let world = shared.world.lock().await;
    let accounts: Vec<Value> = world
        .accounts
        .values()
        .map(|a| {
            json!({
                "account": a.id,
                "livemode": a.livemode,
                "platform": a.is_platform,
                "connected": world.connected.get(&a.id).copied().unwrap_or(a.is_platform),
                "customers": a.customers.iter().filter(|c| !c.deleted).count(),
                "deleted_customers": a.customers.iter().filter(|c| c.deleted).count(),
                "subscriptions": a.subscriptions.len(),
                "prices": a.prices.len(),
                "events": a.events.len()
            })
        })
        .collect();
    ok(&json!({
        "now": world.now(),
        "platform_account": world.config.platform_account,
        "test_secret_key": world.config.test_secret_key,
        "oauth_client_id": world.config.oauth_client_id,
        "accounts": accounts
    }))
}

async fn create_key(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: KeyRequest = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    let (account, livemode) = target_of(&world, &req.target);
    let mode = if livemode { "live" } else { "test" };
    let restricted = req.permissions.is_some();
    let prefix = if restricted {
        format!("rk_{mode}_")
    } else {
        format!("sk_{mode}_")
    };
    let key = req
        .key
        .clone()
        .unwrap_or_else(|| world.ctx.ids.next(&prefix, 32));
    let access = match req.permissions {
        Some(perms) => KeyAccess::Restricted(perms.into_iter().collect::<BTreeSet<_>>()),
        None => KeyAccess::Full,
    };
    let platform = world.is_platform(&account);
    world.account_mut(&account, livemode);
    world.keys.insert(
        key.clone(),
        ApiKey {
            account,
            livemode,
            access,
            platform,
            revoked: false,
            expires_at: None,
        },
    );
    ok(&json!({ "key": key }))
}

#[derive(Debug, Deserialize)]
struct KeyOnly {
    key: String,
}

async fn revoke_key(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: KeyOnly = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    match world.keys.get_mut(&req.key) {
        Some(k) => {
            k.revoked = true;
            ok(&json!({ "revoked": true }))
        }
        None => {
            error_response(&ApiError::invalid_api_key(&req.key).with_status(StatusCode::NOT_FOUND))
        }
    }
}

#[derive(Debug, Deserialize)]
struct AccountOnly {
    account: String,
}

/// Deauthorize a connected account (as if the user disconnected the app).
async fn revoke_account(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: AccountOnly = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    if world.is_platform(&req.account) {
        return error_response(&ApiError::invalid_request(
            "The platform account cannot be deauthorized.",
        ));
    }
    crate::oauth::deauthorize_account(&mut world, &req.account);
    drop(world);
    shared.notify.notify_one();
    ok(&json!({ "stripe_user_id": req.account }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OAuthSettings {
    connect_account: Option<String>,
}

async fn oauth_settings(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: OAuthSettings = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    world.oauth_next_account = req.connect_account.clone();
    ok(&json!({ "connect_account": req.connect_account }))
}

async fn get_faults(State(shared): State<AppState>) -> Response {
    ok(&shared.world.lock().await.faults)
}

async fn put_faults(State(shared): State<AppState>, body: Bytes) -> Response {
    let faults: Faults = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    world.faults = faults;
    ok(&world.faults)
}

async fn put_rate_limits(State(shared): State<AppState>, body: Bytes) -> Response {
    let limits: RateLimits = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    world.config.rate_limits = limits;
    world.buckets.clear();
    ok(&world.config.rate_limits)
}

fn webhook_view(world: &World) -> Value {
    json!({ "config": world.config.webhooks, "pending": world.webhook_queue.len(), "log": world.webhook_log })
}

async fn get_webhooks(State(shared): State<AppState>) -> Response {
    ok(&webhook_view(&*shared.world.lock().await))
}

async fn put_webhooks(State(shared): State<AppState>, body: Bytes) -> Response {
    let s: WebhookSettings = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    let hooks: &mut WebhookConfig = &mut world.config.webhooks;
    if let Some(url) = s.url {
        hooks.url = Some(url).filter(|u| !u.is_empty());
    }
    if let Some(secret) = s.secret {
        hooks.secrets = vec![secret];
    }
    if let Some(secrets) = s.secrets {
        hooks.secrets = secrets;
    }
    if let Some(v) = s.enabled {
        hooks.enabled = v;
    }
    if let Some(v) = s.auto_deliver {
        hooks.auto_deliver = v;
    }
    if let Some(v) = s.retry_schedule_ms {
        hooks.retry_schedule_ms = v;
    }
    if let Some(v) = s.reorder_delay_ms {
        hooks.reorder_delay_ms = v;
    }
    let view = webhook_view(&world);
    drop(world);
    shared.notify.notify_one();
    ok(&view)
}

async fn flush_webhooks(State(shared): State<AppState>) -> Response {
    let delivered = webhooks::flush(&shared).await;
    ok(&json!({ "delivered": delivered }))
}

async fn get_requests(State(shared): State<AppState>) -> Response {
    ok(&shared.world.lock().await.counters)
}

async fn reset_requests(State(shared): State<AppState>) -> Response {
    let mut world = shared.world.lock().await;
    world.counters = Default::default();
    ok(&world.counters)
}

#[derive(Debug, Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(shared): State<AppState>, body: Bytes) -> Response {
    let req: Advance = match parse(&body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let mut world = shared.world.lock().await;
    world.clock_offset += req.seconds;
    ok(&json!({ "now": world.now(), "offset": world.clock_offset }))
}

/// A subscription rendered at the account's version (handy for assertions without an API key).
async fn get_subscription(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let target = query_target(query);
    let world = shared.world.lock().await;
    let (account, livemode) = target_of(&world, &target);
    let view = View {
        version: &world.config.api_version,
        now: world.now(),
    };
    match world.account(&account, livemode).and_then(|a| {
        a.subscriptions
            .get(&id)
            .map(|s| render::subscription(a, s, &view))
    }) {
        Some(v) => ok(&v),
        None => error_response(&ApiError::no_such("subscription", &id, "id")),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reset", post(reset))
        .route("/seed", post(seed_handler))
        .route("/state", get(state))
        .route("/customers", post(create_customer))
        .route(
            "/customers/{id}",
            post(update_customer).delete(delete_customer),
        )
        .route("/subscriptions", post(create_subscription))
        .route(
            "/subscriptions/{id}",
            post(update_subscription)
                .delete(cancel_subscription)
                .get(get_subscription),
        )
        .route("/subscriptions/{id}/status", post(set_subscription_status))
        .route("/prices", post(create_price))
        .route("/coupons", post(create_coupon))
        .route("/keys", post(create_key))
        .route("/keys/revoke", post(revoke_key))
        .route("/revoke", post(revoke_account))
        .route("/oauth", put(oauth_settings))
        .route("/faults", get(get_faults).put(put_faults))
        .route("/rate-limits", put(put_rate_limits))
        .route("/webhooks", get(get_webhooks).put(put_webhooks))
        .route("/webhooks/flush", post(flush_webhooks))
        .route("/requests", get(get_requests).delete(reset_requests))
        .route("/clock/advance", post(advance_clock))
}

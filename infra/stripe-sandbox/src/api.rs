//! The `/v1` API: auth, `Stripe-Account`, rate limits and faults, idempotency, then the
//! resource handlers. Every response carries `Request-Id`; errors use Stripe's body.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::expand;
use crate::form::{Params, bool_at, int_at, strings};
use crate::list::{LIST_PARAMS, ListQuery, list_body, page};
use crate::model::{
    CouponDuration, CustomerInput, Interval, ItemInput, ItemUpdate, Metadata, Recurring,
    SubscriptionInput, SubscriptionStatus, SubscriptionUpdate, Tier, TransformQuantity, UsageType,
};
use crate::render::{self, View};
use crate::server::Shared;
use crate::store::{Account, NewCoupon, NewPrice, NewProduct};
use crate::world::{KeyAccess, StoredResponse, World};

/// Who is calling, after auth and `Stripe-Account`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: String,
    pub account: String,
    pub livemode: bool,
    pub access: KeyAccess,
    pub platform_key: bool,
}

pub fn new_request_id() -> String {
    use rand::Rng;
    use rand::distributions::Alphanumeric;
    let body: String = rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(14)
        .map(char::from)
        .collect();
    format!("req_{body}")
}

/// The key from `Authorization: Bearer k` or `Basic base64(k:)`.
pub fn bearer_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    if let Some(key) = value.strip_prefix("Bearer ") {
        return Some(key.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = decode_base64(encoded.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or_default().to_owned())
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = u32::try_from(ALPHABET.iter().position(|&a| a == c)?).ok()?;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push(u8::try_from((bits >> nbits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Resolves the caller: the key must be known, live, unrevoked; `Stripe-Account` must be a
/// connected account the platform still has access to.
pub fn authenticate(world: &World, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let key = bearer_key(headers)
        .filter(|k| !k.is_empty())
        .ok_or_else(ApiError::no_api_key)?;
    let Some(info) = world.keys.get(&key) else {
        return Err(ApiError::invalid_api_key(&key));
    };
    if info.revoked {
        return Err(ApiError::invalid_api_key(&key));
    }
    if info.expires_at.is_some_and(|t| t <= world.now()) {
        return Err(ApiError::expired_api_key(&key));
    }
    if !info.platform && world.connected.get(&info.account) == Some(&false) {
        return Err(ApiError::invalid_api_key(&key));
    }
    let mut account = info.account.clone();
    if let Some(target) = headers.get("stripe-account").and_then(|v| v.to_str().ok()) {
        let target = target.trim();
        if target != account {
            let allowed = info.platform && world.connected.get(target) == Some(&true);
            if !allowed {
                return Err(ApiError::no_account_access(&key, target));
            }
            account = target.to_owned();
        }
    }
    Ok(Caller {
        key,
        account,
        livemode: info.livemode,
        access: info.access.clone(),
        platform_key: info.platform,
    })
}

fn valid_version(v: &str) -> bool {
    let date = v.get(..10).unwrap_or_default();
    let bytes = date.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
        && (v.len() == 10 || v.as_bytes().get(10) == Some(&b'.'))
}

/// A recognised route: its template (for counters), the resource it needs permission on, and its id.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    template: String,
    resource: &'static str,
    kind: Kind,
    id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Customers,
    CustomerSearch,
    Products,
    Prices,
    Coupons,
    Subscriptions,
    SubscriptionItems,
    Events,
    Account,
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    let (kind, resource, name) = match segments.first().copied()? {
        "customers" if segments.get(1) == Some(&"search") => {
            (Kind::CustomerSearch, "customer", "customers/search")
        }
        "customers" => (Kind::Customers, "customer", "customers"),
        "products" => (Kind::Products, "product", "products"),
        "prices" => (Kind::Prices, "price", "prices"),
        "coupons" => (Kind::Coupons, "coupon", "coupons"),
        "subscriptions" => (Kind::Subscriptions, "subscription", "subscriptions"),
        "subscription_items" => (
            Kind::SubscriptionItems,
            "subscription",
            "subscription_items",
        ),
        "events" => (Kind::Events, "event", "events"),
        "account" => (Kind::Account, "account", "account"),
        _ => return None,
    };
    let id = match (kind, segments.len()) {
        (Kind::CustomerSearch, 2) | (_, 1) => None,
        (Kind::CustomerSearch, _) => return None,
        (_, 2) if !segments[1].is_empty() => Some(segments[1].to_owned()),
        _ => return None,
    };
    let template = match &id {
        Some(_) => format!("{method} /v1/{name}/{{id}}"),
        None => format!("{method} /v1/{name}"),
    };
    Some(Route {
        template,
        resource,
        kind,
        id,
    })
}

/// The whole `/v1/*` pipeline.
pub async fn handle(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = new_request_id();
    let path = uri.path().to_owned();
    let found = route(&method, &path);
    let version_header = headers
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let latency = {
        let mut world = shared.world.lock().await;
        let counters = &mut world.counters;
        counters.total += 1;
        let template = found.as_ref().map_or_else(
            || format!("{method} (unrecognized)"),
            |r| r.template.clone(),
        );
        *counters.by_route.entry(template).or_default() += 1;
        *counters
            .stripe_versions
            .entry(
                version_header
                    .clone()
                    .unwrap_or_else(|| "(none)".to_owned()),
            )
            .or_default() += 1;
        world.faults.latency_ms
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut world = shared.world.lock().await;
    let version = version_header
        .clone()
        .unwrap_or_else(|| world.config.api_version.clone());
    let mut livemode = false;
    let mut replayed = false;
    let mut account_header = None;
    let result: Result<(StatusCode, Value), ApiError> = (|| {
        let caller = authenticate(&world, &headers)?;
        livemode = caller.livemode;
        account_header = headers
            .get("stripe-account")
            .map(|_| caller.account.clone());
        *world
            .counters
            .by_account
            .entry(caller.account.clone())
            .or_default() += 1;
        if !valid_version(&version) {
            return Err(ApiError::invalid_request(format!(
                "Invalid Stripe API version: {version}"
            ))
            .with_code("api_version_invalid")
            .with_param("stripe_version"));
        }
        let Some(route) = found.clone() else {
            return Err(ApiError::unrecognized_url(method.as_str(), &path));
        };
        apply_faults(&mut world, &caller, route.kind)?;
        let write = method != Method::GET;
        if let Some(permission) = caller.access.missing(route.resource, write) {
            return Err(ApiError::missing_permission(
                &caller.key,
                &caller.account,
                &permission,
            ));
        }
        let params = Params::parse(&[uri.query().unwrap_or_default().as_bytes(), &body])?;
        let fingerprint = format!("{method} {path} {}", String::from_utf8_lossy(&body));
        let idem = idempotency_key
            .clone()
            .filter(|_| method == Method::POST)
            .map(|k| (format!("{}:{}", caller.account, caller.livemode), k));
        if let Some(slot) = &idem
            && let Some(stored) = world.idempotency.get(slot)
        {
            if stored.fingerprint != fingerprint {
                return Err(ApiError::idempotency_mismatch(&slot.1));
            }
            replayed = true;
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            return Ok((status, stored.body.clone()));
        }
        world.begin(Some((request_id.clone(), idempotency_key.clone())));
        let view_version = version.clone();
        let out = dispatch(&mut world, &caller, &method, &route, &params, &view_version)?;
        world.enqueue_outbox();
        if let Some(slot) = idem {
            world.idempotency.insert(
                slot,
                StoredResponse {
                    fingerprint,
                    status: 200,
                    body: out.clone(),
                },
            );
        }
        Ok((StatusCode::OK, out))
    })();
    let (status, body, err) = match result {
        Ok((status, body)) => (status, body, None),
        Err(e) => (e.status, e.body(&request_id, livemode), Some(e)),
    };
    *world.counters.by_status.entry(status.as_u16()).or_default() += 1;
    if let Some(e) = &err {
        if e.code == Some("rate_limit") {
            world.counters.rate_limited += 1;
        } else if e.code == Some("lock_timeout") {
            world.counters.lock_timeouts += 1;
        } else if e.status.is_server_error() {
            world.counters.server_errors += 1;
        }
    }
    drop(world);
    shared.notify.notify_one();
    let mut response = (status, axum::Json(body)).into_response();
    let h = response.headers_mut();
    set(h, "request-id", &request_id);
    set(h, "stripe-version", &version);
    if let Some(key) = &idempotency_key {
        set(h, "idempotency-key", key);
    }
    if replayed {
        set(h, "idempotent-replayed", "true");
    }
    if let Some(account) = &account_header {
        set(h, "stripe-account", account);
    }
    if let Some(e) = &err {
        if let Some(retry) = e.should_retry {
            set(
                h,
                "stripe-should-retry",
                if retry { "true" } else { "false" },
            );
        }
        if let Some(reason) = e.rate_limited_reason {
            set(h, "stripe-rate-limited-reason", reason);
        }
    }
    response
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

fn apply_faults(world: &mut World, caller: &Caller, kind: Kind) -> Result<(), ApiError> {
    if world.faults.rate_limit_burst > 0 {
        world.faults.rate_limit_burst -= 1;
        return Err(ApiError::rate_limited(caller.livemode, "global-rate"));
    }
    if world.faults.lock_timeout_burst > 0 {
        world.faults.lock_timeout_burst -= 1;
        return Err(ApiError::lock_timeout());
    }
    if !world.take_token(&caller.account, caller.livemode, "global") {
        return Err(ApiError::rate_limited(caller.livemode, "global-rate"));
    }
    if kind == Kind::CustomerSearch && !world.take_token(&caller.account, caller.livemode, "search")
    {
        return Err(ApiError::rate_limited(caller.livemode, "endpoint-rate"));
    }
    let rate = world.faults.server_error_rate;
    if world.roll(rate) {
        let mut err = ApiError::server_error(true);
        err.should_retry = world.faults.server_error_should_retry;
        return Err(err);
    }
    Ok(())
}

fn only(params: &Params, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::unknown_param(unknown)),
        None => Ok(()),
    }
}

fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::unrecognized_url(method.as_str(), path)
}

fn dispatch(
    world: &mut World,
    caller: &Caller,
    method: &Method,
    route: &Route,
    params: &Params,
    version: &str,
) -> Result<Value, ApiError> {
    let now = world.now();
    let path = match &route.id {
        Some(id) => format!(
            "{}/{id}",
            route
                .template
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches("/{id}")
        ),
        None => route
            .template
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_owned(),
    };
    let livemode = caller.livemode;
    let account_id = caller.account.clone();
    if route.kind == Kind::Account {
        only(params, &["expand"])?;
        return Ok(json!({
            "id": account_id,
            "object": "account",
            "charges_enabled": true,
            "country": "US",
            "default_currency": "usd",
            "details_submitted": true,
            "email": null,
            "metadata": {},
            "payouts_enabled": true,
            "settings": { "dashboard": { "display_name": account_id, "timezone": "Etc/UTC" } },
            "type": "standard"
        }));
    }
    if *method == Method::GET {
        world.account_mut(&account_id, livemode).expire_events(now);
        let acct = world
            .account(&account_id, livemode)
            .ok_or_else(|| ApiError::invalid_request("No such account"))?;
        let view = View { version, now };
        return match &route.id {
            None => list(acct, &view, route.kind, params, &path),
            Some(id) => retrieve(acct, &view, route.kind, id, params),
        };
    }
    let (acct, ctx) = world.account_and_ctx(&account_id, livemode);
    let id = match (method.as_str(), route.kind, &route.id) {
        ("POST", Kind::Customers, None) => {
            only(params, CUSTOMER_PARAMS)?;
            let input = customer_input(params, None)?;
            acct.create_customer(ctx, input)?
        }
        ("POST", Kind::Customers, Some(id)) => {
            only(params, CUSTOMER_PARAMS)?;
            let existing = acct.customers.get(id).map(|c| c.metadata.clone());
            let input = customer_input(params, existing.as_ref())?;
            acct.update_customer(ctx, id, input)?;
            id.clone()
        }
        ("DELETE", Kind::Customers, Some(id)) => {
            acct.delete_customer(ctx, id)?;
            return Ok(render::deleted(id, "customer"));
        }
        ("POST", Kind::Products, None) => {
            only(
                params,
                &[
                    "id",
                    "name",
                    "description",
                    "metadata",
                    "active",
                    "expand",
                    "type",
                    "unit_label",
                    "tax_code",
                    "images",
                    "url",
                    "statement_descriptor",
                    "shippable",
                    "marketing_features",
                ],
            )?;
            let name = params
                .str("name")
                .ok_or_else(|| ApiError::missing_param("name"))?
                .to_owned();
            acct.create_product(
                ctx,
                NewProduct {
                    id: params.str("id").map(str::to_owned),
                    name,
                    description: params.str("description").map(str::to_owned),
                    metadata: metadata_param(params, None)?.unwrap_or_default(),
                    created: None,
                },
            )?
        }
        ("POST", Kind::Prices, None) => {
            let input = price_input(acct, ctx, params)?;
            acct.create_price(ctx, input)?
        }
        ("POST", Kind::Coupons, None) => {
            only(
                params,
                &[
                    "id",
                    "name",
                    "percent_off",
                    "amount_off",
                    "currency",
                    "duration",
                    "duration_in_months",
                    "applies_to",
                    "metadata",
                    "max_redemptions",
                    "redeem_by",
                    "expand",
                    "currency_options",
                ],
            )?;
            let input = coupon_input(params)?;
            acct.create_coupon(ctx, input)?
        }
        ("DELETE", Kind::Coupons, Some(id)) => {
            acct.delete_coupon(ctx, id)?;
            return Ok(render::deleted(id, "coupon"));
        }
        ("POST", Kind::Subscriptions, None) => {
            only(params, SUBSCRIPTION_CREATE_PARAMS)?;
            let input = subscription_input(params)?;
            acct.create_subscription(ctx, input)?
        }
        ("POST", Kind::Subscriptions, Some(id)) => {
            only(params, SUBSCRIPTION_UPDATE_PARAMS)?;
            let existing = acct.subscriptions.get(id).map(|s| s.metadata.clone());
            let update = subscription_update(params, existing.as_ref())?;
            acct.update_subscription(ctx, id, update)?;
            id.clone()
        }
        ("DELETE", Kind::Subscriptions, Some(id)) => {
            only(
                params,
                &["invoice_now", "prorate", "cancellation_details", "expand"],
            )?;
            acct.cancel_subscription(ctx, id)?;
            id.clone()
        }
        _ => return Err(method_not_allowed(method, &path)),
    };
    let view = View { version, now };
    retrieve(acct, &view, route.kind, &id, params)
}

const CUSTOMER_PARAMS: &[&str] = &[
    "name",
    "email",
    "description",
    "phone",
    "metadata",
    "expand",
    "address",
    "balance",
    "invoice_prefix",
    "invoice_settings",
    "next_invoice_sequence",
    "payment_method",
    "preferred_locales",
    "shipping",
    "source",
    "tax",
    "tax_exempt",
    "tax_id_data",
    "test_clock",
    "cash_balance",
    "default_source",
];
const SUBSCRIPTION_CREATE_PARAMS: &[&str] = &[
    "customer",
    "items",
    "discounts",
    "trial_period_days",
    "trial_end",
    "cancel_at_period_end",
    "cancel_at",
    "metadata",
    "collection_method",
    "days_until_due",
    "payment_behavior",
    "expand",
    "default_payment_method",
    "proration_behavior",
    "off_session",
    "billing_cycle_anchor",
    "description",
    "currency",
    "automatic_tax",
    "payment_settings",
    "trial_settings",
    "backdate_start_date",
];
const SUBSCRIPTION_UPDATE_PARAMS: &[&str] = &[
    "items",
    "discounts",
    "cancel_at_period_end",
    "cancel_at",
    "metadata",
    "pause_collection",
    "trial_end",
    "proration_behavior",
    "proration_date",
    "expand",
    "payment_behavior",
    "default_payment_method",
    "collection_method",
    "days_until_due",
    "description",
    "cancellation_details",
    "off_session",
    "billing_cycle_anchor",
    "trial_settings",
];

fn expand_paths(params: &Params) -> Vec<String> {
    params.expand()
}

fn retrieve(
    acct: &Account,
    view: &View,
    kind: Kind,
    id: &str,
    params: &Params,
) -> Result<Value, ApiError> {
    let mut paths = expand_paths(params);
    let mut value = match kind {
        Kind::Customers => {
            let c = acct
                .customers
                .get(id)
                .ok_or_else(|| ApiError::no_such("customer", id, "id"))?;
            if c.deleted {
                return Ok(render::deleted(id, "customer"));
            }
            let mut v = render::customer(acct, c, view);
            if paths.iter().any(|p| p == "subscriptions") {
                expand::customer_subscriptions(acct, view, &mut v);
                paths.retain(|p| p != "subscriptions");
            }
            v
        }
        Kind::Products => {
            let p = acct
                .products
                .get(id)
                .ok_or_else(|| ApiError::no_such("product", id, "id"))?;
            render::product(acct, p)
        }
        Kind::Prices => {
            let p = acct
                .prices
                .get(id)
                .ok_or_else(|| ApiError::no_such("price", id, "id"))?;
            render::price(acct, p, false)
        }
        Kind::Coupons => {
            let c = acct
                .coupons
                .get(id)
                .ok_or_else(|| ApiError::no_such("coupon", id, "id"))?;
            render::coupon(acct, c)
        }
        Kind::Subscriptions => {
            let s = acct
                .subscriptions
                .get(id)
                .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
            render::subscription(acct, s, view)
        }
        Kind::SubscriptionItems => {
            let (s, item) = acct
                .subscriptions
                .iter()
                .find_map(|s| s.items.iter().find(|i| i.id == id).map(|i| (s, i)))
                .ok_or_else(|| ApiError::no_such("subscription_item", id, "id"))?;
            render::subscription_item(acct, s, item, view)
        }
        Kind::Events => {
            let e = acct
                .events
                .get(id)
                .ok_or_else(|| ApiError::no_such("event", id, "id"))?;
            event_json(e)
        }
        Kind::CustomerSearch | Kind::Account => {
            return Err(ApiError::unrecognized_url("GET", &format!("/v1/.../{id}")));
        }
    };
    expand::apply(acct, view, &mut value, &paths)?;
    Ok(value)
}

fn event_json(e: &crate::model::EventRecord) -> Value {
    let mut v = e.body.clone();
    v["pending_webhooks"] = json!(e.pending_webhooks);
    v
}

/// List-level `expand[]`: paths must start with `data.` and count it as a level.
fn expand_list(
    acct: &Account,
    view: &View,
    data: &mut [Value],
    params: &Params,
) -> Result<(), ApiError> {
    let mut item_paths = Vec::new();
    for path in expand_paths(params) {
        if path.split('.').count() > expand::MAX_DEPTH {
            return Err(ApiError::expand_too_deep());
        }
        match path.strip_prefix("data.") {
            Some(rest) => item_paths.push(rest.to_owned()),
            None => {
                return Err(ApiError::invalid_request(format!(
                    "This property cannot be expanded ({path}). You may want to try expanding 'data.{path}' instead."
                ))
                .with_param("expand"));
            }
        }
    }
    let subscriptions = item_paths.iter().any(|p| p == "subscriptions");
    item_paths.retain(|p| p != "subscriptions");
    for v in data.iter_mut() {
        if subscriptions && v.get("object") == Some(&json!("customer")) {
            expand::customer_subscriptions(acct, view, v);
        }
        expand::apply(acct, view, v, &item_paths)?;
    }
    Ok(())
}

fn list(
    acct: &Account,
    view: &View,
    kind: Kind,
    params: &Params,
    url: &str,
) -> Result<Value, ApiError> {
    if kind == Kind::CustomerSearch {
        return crate::search::search_customers(acct, view, params);
    }
    let q = ListQuery::parse(params)?;
    let (mut data, has_more): (Vec<Value>, bool) = match kind {
        Kind::Customers => {
            only(
                params,
                &[&LIST_PARAMS[..], &["email", "test_clock"]].concat(),
            )?;
            let email = params.str("email");
            let (rows, more) = page(
                &acct.customers,
                |c| !c.deleted && email.is_none_or(|e| c.email.as_deref() == Some(e)),
                &q,
                "customer",
            )?;
            (
                rows.iter()
                    .map(|c| render::customer(acct, c, view))
                    .collect(),
                more,
            )
        }
        Kind::Products => {
            only(
                params,
                &[
                    &LIST_PARAMS[..],
                    &["active", "ids", "shippable", "url", "type"],
                ]
                .concat(),
            )?;
            let active = params.bool("active")?;
            let ids = strings(params.get("ids"));
            let (rows, more) = page(
                &acct.products,
                |p| {
                    !p.deleted
                        && active.is_none_or(|a| p.active == a)
                        && (ids.is_empty() || ids.contains(&p.id))
                },
                &q,
                "product",
            )?;
            (
                rows.iter().map(|p| render::product(acct, p)).collect(),
                more,
            )
        }
        Kind::Prices => {
            only(
                params,
                &[
                    &LIST_PARAMS[..],
                    &[
                        "active",
                        "currency",
                        "product",
                        "type",
                        "lookup_keys",
                        "recurring",
                    ],
                ]
                .concat(),
            )?;
            let active = params.bool("active")?;
            let product = params.str("product");
            let currency = params.str("currency");
            let kind_filter = params.str("type");
            let lookup_keys = strings(params.get("lookup_keys"));
            let (rows, more) = page(
                &acct.prices,
                |p| {
                    active.is_none_or(|a| p.active == a)
                        && product.is_none_or(|x| p.product == x)
                        && currency.is_none_or(|x| p.currency == x)
                        && kind_filter.is_none_or(|t| (t == "recurring") == p.recurring.is_some())
                        && (lookup_keys.is_empty()
                            || p.lookup_key
                                .as_ref()
                                .is_some_and(|k| lookup_keys.contains(k)))
                },
                &q,
                "price",
            )?;
            (
                rows.iter().map(|p| render::price(acct, p, false)).collect(),
                more,
            )
        }
        Kind::Coupons => {
            only(params, &LIST_PARAMS)?;
            let (rows, more) = page(&acct.coupons, |c| !c.deleted, &q, "coupon")?;
            (rows.iter().map(|c| render::coupon(acct, c)).collect(), more)
        }
        Kind::Subscriptions => {
            only(
                params,
                &[
                    &LIST_PARAMS[..],
                    &[
                        "customer",
                        "customer_account",
                        "price",
                        "plan",
                        "status",
                        "collection_method",
                        "current_period_start",
                        "current_period_end",
                        "automatic_tax",
                        "test_clock",
                    ],
                ]
                .concat(),
            )?;
            let customer = params.str("customer");
            let price = params.str("price").or_else(|| params.str("plan"));
            let collection = params.str("collection_method");
            let status = params.str("status");
            let status_filter: Box<dyn Fn(SubscriptionStatus) -> bool> = match status {
                None => Box::new(|s| s != SubscriptionStatus::Canceled),
                Some("all") => Box::new(|_| true),
                Some("ended") => Box::new(SubscriptionStatus::is_ended),
                Some(other) => {
                    let wanted = SubscriptionStatus::parse(other).ok_or_else(|| {
                        ApiError::invalid_request("Invalid status: must be one of active, all, canceled, ended, incomplete, incomplete_expired, past_due, paused, trialing, or unpaid")
                        .with_code("parameter_invalid_string")
                        .with_param("status")
                    })?;
                    Box::new(move |s| s == wanted)
                }
            };
            let (rows, more) = page(
                &acct.subscriptions,
                |s| {
                    status_filter(s.status)
                        && customer.is_none_or(|c| s.customer == c)
                        && price.is_none_or(|p| s.items.iter().any(|i| i.price == p))
                        && collection.is_none_or(|m| s.collection_method == m)
                },
                &q,
                "subscription",
            )?;
            (
                rows.iter()
                    .map(|s| render::subscription(acct, s, view))
                    .collect(),
                more,
            )
        }
        Kind::SubscriptionItems => {
            only(params, &[&LIST_PARAMS[..], &["subscription"]].concat())?;
            let sub_id = params
                .str("subscription")
                .ok_or_else(|| ApiError::missing_param("subscription"))?;
            let sub = acct.subscriptions.get(sub_id).ok_or_else(|| {
                ApiError::no_such("subscription", sub_id, "subscription")
                    .with_status(StatusCode::BAD_REQUEST)
            })?;
            // Items are listed in creation order; cursors work on the item ids.
            let items = &sub.items;
            let start = match (&q.starting_after, &q.ending_before) {
                (Some(after), _) => items
                    .iter()
                    .position(|i| &i.id == after)
                    .map_or(items.len(), |p| p + 1),
                _ => 0,
            };
            let end = match &q.ending_before {
                Some(before) => items.iter().position(|i| &i.id == before).unwrap_or(0),
                None => items.len(),
            };
            let window: Vec<_> = items
                .get(start..end.max(start))
                .unwrap_or_default()
                .iter()
                .collect();
            let has_more = window.len() > q.limit;
            (
                window
                    .iter()
                    .take(q.limit)
                    .map(|i| render::subscription_item(acct, sub, i, view))
                    .collect(),
                has_more,
            )
        }
        Kind::Events => {
            only(
                params,
                &[&LIST_PARAMS[..], &["type", "types", "delivery_success"]].concat(),
            )?;
            let single = params.str("type");
            let types = strings(params.get("types"));
            if single.is_some() && !types.is_empty() {
                return Err(ApiError::invalid_request(
                    "You may only specify one of these parameters: type, types.",
                ));
            }
            if types.len() > 20 {
                return Err(ApiError::invalid_param(
                    "types",
                    "You may pass at most 20 types.",
                ));
            }
            let delivery = bool_at(params.get("delivery_success"), "delivery_success")?;
            let (rows, more) = page(
                &acct.events,
                |e| {
                    single.is_none_or(|t| type_matches(t, &e.kind))
                        && (types.is_empty() || types.contains(&e.kind))
                        && delivery.is_none_or(|d| (e.delivery_success == Some(true)) == d)
                },
                &q,
                "event",
            )?;
            (rows.iter().map(|e| event_json(e)).collect(), more)
        }
        Kind::CustomerSearch | Kind::Account => (Vec::new(), false),
    };
    expand_list(acct, view, &mut data, params)?;
    Ok(list_body(url, data, has_more))
}

/// `customer.*` wildcards as Stripe's `type` filter allows.
fn type_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => pattern == kind,
    }
}

// ---------- params -> inputs ----------

fn opt_string(params: &Params, name: &str) -> Option<String> {
    params.str(name).map(str::to_owned)
}

/// `metadata[k]=v` (merge; empty value removes `k`), or `metadata=` (clear all).
fn metadata_param(
    params: &Params,
    existing: Option<&Metadata>,
) -> Result<Option<Metadata>, ApiError> {
    match params.get("metadata") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(
            existing
                .map(|m| m.keys().map(|k| (k.clone(), String::new())).collect())
                .unwrap_or_default(),
        )),
        Some(Value::Object(map)) => Ok(Some(
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect(),
        )),
        Some(_) => Err(ApiError::invalid_param("metadata", "Invalid hash")),
    }
}

fn customer_input(params: &Params, existing: Option<&Metadata>) -> Result<CustomerInput, ApiError> {
    Ok(CustomerInput {
        name: opt_string(params, "name"),
        email: opt_string(params, "email"),
        description: opt_string(params, "description"),
        phone: opt_string(params, "phone"),
        currency: None,
        metadata: metadata_param(params, existing)?,
        coupon: None,
        created: None,
    })
}

fn u64_at(value: Option<&Value>, name: &str) -> Result<Option<u64>, ApiError> {
    match int_at(value, name)? {
        None => Ok(None),
        Some(n) => u64::try_from(n).map(Some).map_err(|_| {
            ApiError::invalid_param(name, "This value must be greater than or equal to 0.")
        }),
    }
}

/// `discounts[0][coupon]=X` -> coupon ids (`discounts=` -> empty).
fn coupons_of(value: Option<&Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
        Some(Value::Array(entries)) => entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.get("coupon")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::missing_param(&format!("{name}[{i}][coupon]")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ApiError::invalid_param(name, "Invalid array")),
    }
}

fn subscription_input(params: &Params) -> Result<SubscriptionInput, ApiError> {
    let customer = params
        .str("customer")
        .ok_or_else(|| ApiError::missing_param("customer"))?
        .to_owned();
    let items = match params.get("items") {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let price = item
                    .get("price")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::missing_param(&format!("items[{i}][price]")))?
                    .to_owned();
                Ok(ItemInput {
                    price,
                    quantity: u64_at(item.get("quantity"), &format!("items[{i}][quantity]"))?,
                    coupons: coupons_of(item.get("discounts"), &format!("items[{i}][discounts]"))?
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?,
        None => return Err(ApiError::missing_param("items")),
        Some(_) => return Err(ApiError::invalid_param("items", "Invalid array")),
    };
    let mut trial_period_days = params.int("trial_period_days")?;
    if let Some(end) = params.str("trial_end").filter(|s| *s != "now") {
        let end: i64 = end
            .parse()
            .map_err(|_| ApiError::invalid_param("trial_end", "Invalid timestamp"))?;
        trial_period_days = Some(((end - crate::world::unix_now()) / 86_400).max(1));
    }
    let status = match params.str("payment_behavior") {
        Some("default_incomplete") => Some(SubscriptionStatus::Incomplete),
        _ => None,
    };
    Ok(SubscriptionInput {
        customer,
        items,
        coupons: coupons_of(params.get("discounts"), "discounts")?.unwrap_or_default(),
        trial_period_days,
        cancel_at_period_end: params.bool("cancel_at_period_end")?.unwrap_or(false),
        status: if trial_period_days.is_some() {
            None
        } else {
            status
        },
        metadata: metadata_param(params, None)?,
        collection_method: opt_string(params, "collection_method"),
        created: None,
    })
}

fn subscription_update(
    params: &Params,
    existing: Option<&Metadata>,
) -> Result<SubscriptionUpdate, ApiError> {
    let items = match params.get("items") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    Ok(ItemUpdate {
                        id: item.get("id").and_then(Value::as_str).map(str::to_owned),
                        price: item.get("price").and_then(Value::as_str).map(str::to_owned),
                        quantity: u64_at(item.get("quantity"), &format!("items[{i}][quantity]"))?,
                        deleted: bool_at(item.get("deleted"), &format!("items[{i}][deleted]"))?
                            .unwrap_or(false),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
        ),
        Some(_) => return Err(ApiError::invalid_param("items", "Invalid array")),
    };
    let cancel_at = match params.get("cancel_at") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => Some(None),
        Some(v) => Some(int_at(Some(v), "cancel_at")?),
    };
    let pause_collection = match params.get("pause_collection") {
        None => None,
        Some(Value::String(s)) if s.is_empty() => Some(None),
        Some(Value::Object(map)) => Some(Some(
            map.get("behavior")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::missing_param("pause_collection[behavior]"))?
                .to_owned(),
        )),
        Some(_) => return Err(ApiError::invalid_param("pause_collection", "Invalid hash")),
    };
    Ok(SubscriptionUpdate {
        items,
        coupons: coupons_of(params.get("discounts"), "discounts")?,
        cancel_at_period_end: params.bool("cancel_at_period_end")?,
        cancel_at,
        metadata: metadata_param(params, existing)?,
        pause_collection,
        status: None,
        end_trial_now: params.str("trial_end") == Some("now"),
    })
}

fn price_input(
    acct: &mut Account,
    ctx: &mut crate::store::Ctx,
    params: &Params,
) -> Result<NewPrice, ApiError> {
    only(
        params,
        &[
            "currency",
            "unit_amount",
            "unit_amount_decimal",
            "product",
            "product_data",
            "recurring",
            "billing_scheme",
            "tiers",
            "tiers_mode",
            "transform_quantity",
            "tax_behavior",
            "nickname",
            "lookup_key",
            "metadata",
            "active",
            "expand",
            "currency_options",
            "custom_unit_amount",
            "transfer_lookup_key",
        ],
    )?;
    let currency = params
        .str("currency")
        .ok_or_else(|| ApiError::missing_param("currency"))?
        .to_owned();
    let product = match (params.str("product"), params.get("product_data")) {
        (Some(p), _) => p.to_owned(),
        (None, Some(data)) => {
            let name = data
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::missing_param("product_data[name]"))?
                .to_owned();
            acct.create_product(
                ctx,
                NewProduct {
                    id: None,
                    name,
                    description: None,
                    metadata: Metadata::new(),
                    created: None,
                },
            )?
        }
        (None, None) => return Err(ApiError::missing_param("product")),
    };
    let recurring = match params.get("recurring") {
        None => None,
        Some(r) => {
            let interval = r
                .get("interval")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::missing_param("recurring[interval]"))?;
            let interval = Interval::parse(interval).ok_or_else(|| {
                ApiError::invalid_param(
                    "recurring[interval]",
                    "Invalid recurring[interval]: must be one of day, week, month, or year",
                )
            })?;
            let count = u64_at(r.get("interval_count"), "recurring[interval_count]")?.unwrap_or(1);
            let usage_type = match r.get("usage_type").and_then(Value::as_str) {
                None | Some("licensed") => UsageType::Licensed,
                Some("metered") => UsageType::Metered,
                Some(_) => {
                    return Err(ApiError::invalid_param(
                        "recurring[usage_type]",
                        "Invalid recurring[usage_type]: must be one of licensed or metered",
                    ));
                }
            };
            Some(Recurring {
                interval,
                interval_count: u32::try_from(count).unwrap_or(u32::MAX),
                usage_type,
            })
        }
    };
    let tiers = match params.get("tiers") {
        None => Vec::new(),
        Some(Value::Array(tiers)) => tiers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let up_to = match t.get("up_to").and_then(Value::as_str) {
                    Some("inf") | None => None,
                    Some(n) => Some(n.parse::<u64>().map_err(|_| {
                        ApiError::invalid_param(&format!("tiers[{i}][up_to]"), "Invalid integer")
                    })?),
                };
                Ok(Tier {
                    up_to,
                    unit_amount: int_at(t.get("unit_amount"), &format!("tiers[{i}][unit_amount]"))?,
                    flat_amount: int_at(t.get("flat_amount"), &format!("tiers[{i}][flat_amount]"))?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?,
        Some(_) => return Err(ApiError::invalid_param("tiers", "Invalid array")),
    };
    if params.str("billing_scheme") == Some("tiered") && tiers.is_empty() {
        return Err(ApiError::missing_param("tiers"));
    }
    let transform_quantity = match params.get("transform_quantity") {
        None => None,
        Some(t) => Some(TransformQuantity {
            divide_by: u64_at(t.get("divide_by"), "transform_quantity[divide_by]")?
                .ok_or_else(|| ApiError::missing_param("transform_quantity[divide_by]"))?,
            round: t
                .get("round")
                .and_then(Value::as_str)
                .unwrap_or("up")
                .to_owned(),
        }),
    };
    Ok(NewPrice {
        product,
        currency,
        unit_amount: params.int("unit_amount")?,
        unit_amount_decimal: opt_string(params, "unit_amount_decimal"),
        recurring,
        tiers_mode: opt_string(params, "tiers_mode"),
        tiers,
        transform_quantity,
        tax_behavior: opt_string(params, "tax_behavior"),
        nickname: opt_string(params, "nickname"),
        lookup_key: opt_string(params, "lookup_key"),
        metadata: metadata_param(params, None)?.unwrap_or_default(),
        created: None,
    })
}

fn coupon_input(params: &Params) -> Result<NewCoupon, ApiError> {
    let duration = match params.str("duration") {
        None => CouponDuration::Once,
        Some(d) => CouponDuration::parse(d).ok_or_else(|| {
            ApiError::invalid_param(
                "duration",
                "Invalid duration: must be one of forever, once, or repeating",
            )
        })?,
    };
    let percent_off = match params.str("percent_off") {
        None => None,
        Some(p) => Some(p.parse::<f64>().map_err(|_| {
            ApiError::invalid_param("percent_off", format!("Invalid decimal: {p}"))
        })?),
    };
    let applies_to_products = params.get("applies_to").map(|a| strings(a.get("products")));
    Ok(NewCoupon {
        id: opt_string(params, "id"),
        name: opt_string(params, "name"),
        percent_off,
        amount_off: params.int("amount_off")?,
        currency: opt_string(params, "currency"),
        duration,
        duration_in_months: u64_at(params.get("duration_in_months"), "duration_in_months")?
            .map(|m| u32::try_from(m).unwrap_or(u32::MAX)),
        applies_to_products,
        metadata: metadata_param(params, None)?.unwrap_or_default(),
        created: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_recognised_with_their_templates() {
        let r = route(&Method::GET, "/v1/customers/cus_1").unwrap();
        assert_eq!(
            (r.template.as_str(), r.id.as_deref()),
            ("GET /v1/customers/{id}", Some("cus_1"))
        );
        let r = route(&Method::GET, "/v1/customers/search").unwrap();
        assert_eq!(r.kind, Kind::CustomerSearch);
        assert!(route(&Method::GET, "/v1/charges").is_none());
        assert!(route(&Method::GET, "/v1/customers/cus_1/extra").is_none());
    }

    #[test]
    fn basic_auth_carries_the_key_as_the_username() {
        let mut headers = HeaderMap::new();
        // base64("sk_test_abc:")
        headers.insert(
            "authorization",
            HeaderValue::from_static("Basic c2tfdGVzdF9hYmM6"),
        );
        assert_eq!(bearer_key(&headers).as_deref(), Some("sk_test_abc"));
    }

    #[test]
    fn api_versions_need_a_date_and_an_optional_name() {
        assert!(valid_version("2026-07-29.dahlia"));
        assert!(valid_version("2024-06-20"));
        assert!(!valid_version("latest"));
        assert!(!valid_version("2024-6-20"));
    }
}
